//! A paid node's payment routes: its terms, a payer's standing, and
//! redemption on demand by the operator.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Signed;
use crate::error::ApiError;
use crate::payments::Payments;
use crate::AppState;
use gradnet_hub::Writer;

fn payments(s: &AppState) -> Result<&std::sync::Arc<Payments>, ApiError> {
    s.payments().ok_or_else(|| {
        ApiError::not_found("this node does not charge: it has no prices on chain (or no --operator-key / --chain-rpc)")
    })
}

/// `GET /api/v0/payments`: whom to pay, where, and the node's prices.
pub(crate) async fn terms(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(payments(&s)?.describe()))
}

/// `GET /api/v0/payments/{payer}`: what the payer authorized, was charged
/// and has deposited here.
pub(crate) async fn standing(
    State(s): State<AppState>,
    Path(payer): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = payments(&s)?;
    let payer = payer.trim().parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_account",
            format!("`{payer}` is not an account (0x and 40 hex digits)"),
        )
    })?;
    Ok(Json(p.standing(payer)))
}

/// `POST /api/v0/payments/redeem` (signed by the operator): redeems now
/// what was charged and not collected.
pub(crate) async fn redeem(
    State(s): State<AppState>,
    Extension(by): Extension<Signed>,
) -> Result<Json<Value>, ApiError> {
    let p = payments(&s)?;
    let operator = p.payee.to_checksum(None);
    match &by.writer {
        Writer::Account(a) if a.eq_ignore_ascii_case(&operator) => {}
        _ => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("only this node's operator ({operator}) redeems its vouchers"),
            ))
        }
    }
    let (paid, tx) = p
        .redeem()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "redemption_failed", e))?;
    Ok(Json(json!({"paid": paid.to_string(), "transaction": tx})))
}
