//! The escrow at `0x…FA` that pays inference nodes for off-chain work: a
//! payer deposits into a channel to one payee (a node's operator); the payee
//! redeems the payer's EIP-712 vouchers (`gradnet_types::payments`), many in
//! one transaction, collecting what it charged up to what each voucher
//! signed; the payer takes back the rest only after a withdrawal delay long
//! enough for the payee to redeem.
//!
//! Why it holds: a payee collects at most `min(amount, cumulative, deposit)`
//! in total, since the channel keeps what was redeemed and pays only the
//! difference (a voucher pays each wei once; an older one pays nothing); a
//! deposit is locked to one payee, so it cannot be spent at two nodes; and a
//! withdrawal waits `withdrawalDelay` seconds after it is announced, during
//! which redemption still pays.
//!
//! Channel state lives in the node registry's account (`0x…F5`) under its
//! own slot tags; the deposited value is this address's balance.

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolCall;
use gradnet_types::payments::{
    Channel, IEscrow, SignedVoucher, Voucher, DEFAULT_WITHDRAWAL_DELAY_SECS, ESCROW, MAX_REDEEM,
};
use revm::context_interface::{Block, Cfg, ContextTr, JournalTr};
use revm::interpreter::CallInputs;

use crate::error::SystemError;
use crate::registry::{self, REGISTRY_READ_GAS, REGISTRY_WRITE_GAS};
use crate::revert;
use crate::slots::{slot, JournalSlots, Slots};
use crate::system_call::{self, Rules};

use IEscrow::IEscrowCalls as Call;

/// Gas of redeeming one voucher: its signature recovered (as ecrecover
/// costs), the channel read and written, its event.
pub const VOUCHER_GAS: u64 = 15_000;

/// The escrow over the registry account's storage.
pub struct Escrow<S>(pub S);

fn channel_slot(payer: &Address, payee: &Address) -> U256 {
    slot(
        "gradnet.escrow.channel",
        &[payer.as_slice(), payee.as_slice()].concat(),
    )
}

fn u64_of(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// What redeeming one voucher did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// Paid `paid` wei (zero when it was already redeemed or the deposit is spent).
    Paid {
        /// The payer.
        payer: Address,
        /// What the payee claimed.
        amount: U256,
        /// What moved to the payee.
        paid: U256,
    },
    /// Refused, and why.
    Refused {
        /// The payer it names.
        payer: Address,
        /// Why.
        reason: String,
    },
}

impl<S: Slots> Escrow<S> {
    /// The channel from `payer` to `payee`.
    pub fn channel(&mut self, payer: &Address, payee: &Address) -> Result<Channel, SystemError> {
        let b = channel_slot(payer, payee);
        Ok(Channel {
            deposited: self.0.get(b)?,
            redeemed: self.0.get(b + U256::from(1))?,
            withdrawableAt: u64_of(self.0.get(b + U256::from(2))?),
        })
    }

    fn put(&mut self, payer: &Address, payee: &Address, c: &Channel) -> Result<(), SystemError> {
        let b = channel_slot(payer, payee);
        self.0.set(b, c.deposited)?;
        self.0.set(b + U256::from(1), c.redeemed)?;
        Ok(self
            .0
            .set(b + U256::from(2), U256::from(c.withdrawableAt))?)
    }

    /// Seconds between announcing a withdrawal and making it.
    pub fn delay(&mut self) -> Result<u64, SystemError> {
        let d = u64_of(self.0.get(slot("gradnet.escrow.delay", &[]))?);
        Ok(if d == 0 {
            DEFAULT_WITHDRAWAL_DELAY_SECS
        } else {
            d
        })
    }

    /// Sets the withdrawal delay (at genesis).
    pub fn set_delay(&mut self, secs: u64) -> Result<(), SystemError> {
        Ok(self
            .0
            .set(slot("gradnet.escrow.delay", &[]), U256::from(secs))?)
    }

    /// Adds `value` to the channel from `payer` to `payee`.
    pub fn deposit(
        &mut self,
        payer: Address,
        payee: Address,
        value: U256,
    ) -> Result<Channel, SystemError> {
        if value.is_zero() {
            return Err(revert!("escrow: a deposit sends value (in wei)"));
        }
        if payee.is_zero() || payee == payer {
            return Err(revert!(
                "escrow: deposit to a node operator's account, not {payee}"
            ));
        }
        let mut c = self.channel(&payer, &payee)?;
        c.deposited += value;
        self.put(&payer, &payee, &c)?;
        Ok(c)
    }

    /// Announces that `payer` will take back what `payee` has not redeemed,
    /// `delay` seconds from `now`.
    pub fn start_withdrawal(
        &mut self,
        payer: Address,
        payee: Address,
        now: u64,
    ) -> Result<u64, SystemError> {
        let mut c = self.channel(&payer, &payee)?;
        if c.deposited <= c.redeemed {
            return Err(revert!(
                "escrow: nothing to withdraw from the channel to {payee}"
            ));
        }
        if c.withdrawableAt != 0 {
            return Err(revert!(
                "escrow: a withdrawal is already announced (withdrawable at {})",
                c.withdrawableAt
            ));
        }
        c.withdrawableAt = now + self.delay()?;
        self.put(&payer, &payee, &c)?;
        Ok(c.withdrawableAt)
    }

    /// Takes back what is left once the announced withdrawal is due.
    pub fn withdraw(
        &mut self,
        payer: Address,
        payee: Address,
        now: u64,
    ) -> Result<U256, SystemError> {
        let mut c = self.channel(&payer, &payee)?;
        if c.withdrawableAt == 0 {
            return Err(revert!(
                "escrow: announce the withdrawal first (startWithdrawal), then wait {} s so the node can redeem",
                self.delay()?
            ));
        }
        if now < c.withdrawableAt {
            return Err(revert!(
                "escrow: the withdrawal is due at {} ({} s from now): the node may still redeem until then",
                c.withdrawableAt,
                c.withdrawableAt - now
            ));
        }
        let amount = c.deposited.saturating_sub(c.redeemed);
        c.deposited = c.redeemed;
        c.withdrawableAt = 0;
        self.put(&payer, &payee, &c)?;
        Ok(amount)
    }

    /// Redeems `vouchers` for `payee`: each pays what it claims beyond what
    /// its channel has paid, within what was signed and deposited. A bad
    /// voucher is refused on its own; the others still pay.
    pub fn redeem(
        &mut self,
        payee: Address,
        vouchers: &[SignedVoucher],
        chain_id: u64,
        now: u64,
    ) -> Result<Vec<Redemption>, SystemError> {
        if vouchers.is_empty() || vouchers.len() > MAX_REDEEM {
            return Err(revert!(
                "escrow: a redemption carries 1 to {MAX_REDEEM} vouchers, not {}",
                vouchers.len()
            ));
        }
        let mut out = Vec::with_capacity(vouchers.len());
        for v in vouchers {
            let refuse = |reason: String| Redemption::Refused {
                payer: v.payer,
                reason,
            };
            if v.amount > v.cumulative {
                out.push(refuse(format!(
                    "claims {} wei of a voucher for {}",
                    v.amount, v.cumulative
                )));
                continue;
            }
            if now > v.expiry {
                out.push(refuse(format!("expired at {}", v.expiry)));
                continue;
            }
            let voucher = Voucher {
                payer: v.payer,
                payee,
                cumulative: v.cumulative,
                expiry: v.expiry,
            };
            if let Err(e) = voucher.check(chain_id, &v.signature) {
                out.push(refuse(e.to_string()));
                continue;
            }
            let mut c = self.channel(&v.payer, &payee)?;
            let collectable = v.amount.min(c.deposited);
            let paid = collectable.saturating_sub(c.redeemed);
            if !paid.is_zero() {
                c.redeemed = collectable;
                self.put(&v.payer, &payee, &c)?;
            }
            out.push(Redemption::Paid {
                payer: v.payer,
                amount: v.amount,
                paid,
            });
        }
        Ok(out)
    }
}

fn log<J: JournalTr>(journal: &mut J, e: impl alloy_sol_types::SolEvent) {
    system_call::log(journal, ESCROW, e)
}

fn pay<J: JournalTr>(journal: &mut J, to: Address, amount: U256) -> Result<(), SystemError> {
    if amount.is_zero() {
        return Ok(());
    }
    if let Some(e) = journal
        .transfer(ESCROW, to, amount)
        .map_err(|e| e.to_string())?
    {
        return Err(revert!("escrow: transfer failed: {e:?}"));
    }
    Ok(())
}

/// Redeems `vouchers` for `payee`, pays it, logs each outcome.
fn redeem<J: JournalTr>(
    escrow: &mut Escrow<JournalSlots<'_, J>>,
    payee: Address,
    vouchers: &[SignedVoucher],
    chain_id: u64,
    now: u64,
) -> Result<(Vec<u8>, u64), SystemError> {
    let outcomes = escrow.redeem(payee, vouchers, chain_id, now)?;
    let mut total = U256::ZERO;
    for o in outcomes {
        match o {
            Redemption::Paid {
                payer,
                amount,
                paid,
            } => {
                total += paid;
                log(
                    escrow.0.journal,
                    IEscrow::Redeemed {
                        payer,
                        payee,
                        amount,
                        paid,
                    },
                );
            }
            Redemption::Refused { payer, reason } => log(
                escrow.0.journal,
                IEscrow::VoucherRefused {
                    payer,
                    payee,
                    reason,
                },
            ),
        }
    }
    pay(escrow.0.journal, payee, total)?;
    Ok((
        IEscrow::redeemCall::abi_encode_returns(&total),
        REGISTRY_READ_GAS + VOUCHER_GAS * vouchers.len() as u64,
    ))
}

/// Runs a call to `0x…FA`: its return data and gas.
pub fn call<CTX: ContextTr>(
    ctx: &mut CTX,
    inputs: &CallInputs,
) -> Result<(Vec<u8>, u64), SystemError> {
    let value = inputs.call_value();
    let call: Call = system_call::decode(ctx, inputs, ESCROW, "escrow", |c| Rules {
        payable: matches!(c, Call::deposit(_)),
        writes: !matches!(c, Call::channel(_) | Call::withdrawalDelay(_)),
    })?;
    let now = u64_of(ctx.block().timestamp());
    let chain_id = ctx.cfg().chain_id();
    let caller = inputs.caller;
    let journal = ctx.journal_mut();
    let mut escrow = Escrow(JournalSlots {
        journal: &mut *journal,
        account: registry::ADDRESS,
    });
    match call {
        Call::deposit(c) => {
            let ch = escrow.deposit(caller, c.payee, value)?;
            log(
                escrow.0.journal,
                IEscrow::Deposited {
                    payer: caller,
                    payee: c.payee,
                    amount: value,
                    deposited: ch.deposited,
                },
            );
            Ok((vec![], REGISTRY_WRITE_GAS))
        }
        Call::startWithdrawal(c) => {
            let at = escrow.start_withdrawal(caller, c.payee, now)?;
            log(
                escrow.0.journal,
                IEscrow::WithdrawalStarted {
                    payer: caller,
                    payee: c.payee,
                    withdrawableAt: at,
                },
            );
            Ok((vec![], REGISTRY_WRITE_GAS))
        }
        Call::withdraw(c) => {
            let amount = escrow.withdraw(caller, c.payee, now)?;
            pay(escrow.0.journal, caller, amount)?;
            log(
                escrow.0.journal,
                IEscrow::Withdrawn {
                    payer: caller,
                    payee: c.payee,
                    amount,
                },
            );
            Ok((
                IEscrow::withdrawCall::abi_encode_returns(&amount),
                REGISTRY_WRITE_GAS,
            ))
        }
        Call::redeem(c) => redeem(&mut escrow, caller, &c.vouchers, chain_id, now),
        Call::redeemPacked(c) => {
            let vouchers = gradnet_types::payments::unpack(&c.vouchers)
                .map_err(|e| revert!("escrow: redeemPacked: {e}"))?;
            redeem(&mut escrow, caller, &vouchers, chain_id, now)
        }
        Call::channel(c) => Ok((
            IEscrow::channelCall::abi_encode_returns(&escrow.channel(&c.payer, &c.payee)?),
            REGISTRY_READ_GAS,
        )),
        Call::withdrawalDelay(_) => Ok((
            IEscrow::withdrawalDelayCall::abi_encode_returns(&escrow.delay()?),
            REGISTRY_READ_GAS,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use std::collections::BTreeMap;

    const CHAIN: u64 = 31337;

    fn key(b: u8) -> B256 {
        B256::repeat_byte(b)
    }

    fn address_of(k: &B256) -> Address {
        let sk = k256::ecdsa::SigningKey::from_slice(k.as_slice()).unwrap();
        Address::from_public_key(sk.verifying_key())
    }

    /// A voucher from the payer with key `k` to `payee`, redeemed for `amount`.
    fn voucher(
        k: &B256,
        payee: Address,
        cumulative: u64,
        expiry: u64,
        amount: u64,
    ) -> SignedVoucher {
        let v = Voucher {
            payer: address_of(k),
            payee,
            cumulative: U256::from(cumulative),
            expiry,
        };
        let sk = k256::ecdsa::SigningKey::from_slice(k.as_slice()).unwrap();
        let (sig, recid) = sk
            .sign_prehash_recoverable(v.signing_hash(CHAIN).as_slice())
            .unwrap();
        SignedVoucher {
            payer: v.payer,
            cumulative: v.cumulative,
            expiry,
            amount: U256::from(amount),
            signature: alloy_primitives::Signature::from_signature_and_parity(
                sig,
                recid.is_y_odd(),
            )
            .as_bytes()
            .to_vec()
            .into(),
        }
    }

    fn paid(r: &[Redemption]) -> Vec<u64> {
        r.iter()
            .map(|o| match o {
                Redemption::Paid { paid, .. } => u64::try_from(*paid).unwrap(),
                Redemption::Refused { .. } => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn a_node_collects_what_it_charged_once_and_never_past_the_voucher_or_the_deposit() {
        let mut slots = BTreeMap::new();
        let mut e = Escrow(&mut slots);
        let (alice, node, other) = (
            key(1),
            Address::repeat_byte(0xee),
            Address::repeat_byte(0xdd),
        );
        let payer = address_of(&alice);
        e.deposit(payer, node, U256::from(1_000u64)).unwrap();
        // charged 300 of a 500 voucher: 300; the same again: nothing
        let r = e
            .redeem(node, &[voucher(&alice, node, 500, 100, 300)], CHAIN, 50)
            .unwrap();
        assert_eq!(paid(&r), [300]);
        let r = e
            .redeem(node, &[voucher(&alice, node, 500, 100, 300)], CHAIN, 50)
            .unwrap();
        assert_eq!(paid(&r), [0]);
        // a claim past what was signed is refused; an older, lower voucher pays nothing
        let r = e
            .redeem(
                node,
                &[
                    voucher(&alice, node, 500, 100, 501),
                    voucher(&alice, node, 200, 100, 200),
                ],
                CHAIN,
                50,
            )
            .unwrap();
        assert_eq!(paid(&r), [u64::MAX, 0]);
        // later vouchers pay only the difference, and never past the deposit
        let r = e
            .redeem(
                node,
                &[
                    voucher(&alice, node, 900, 100, 900),
                    voucher(&alice, node, 5_000, 100, 5_000),
                ],
                CHAIN,
                50,
            )
            .unwrap();
        assert_eq!(paid(&r), [600, 100]);
        let c = e.channel(&payer, &node).unwrap();
        assert_eq!(
            (c.deposited, c.redeemed),
            (U256::from(1_000u64), U256::from(1_000u64))
        );
        // the deposit is the payee's alone: another node cannot draw on it
        let r = e
            .redeem(other, &[voucher(&alice, node, 5_000, 100, 10)], CHAIN, 50)
            .unwrap();
        assert!(
            matches!(&r[0], Redemption::Refused { reason, .. } if reason.contains("not")),
            "{r:?}"
        );
        let r = e
            .redeem(other, &[voucher(&alice, other, 5_000, 100, 10)], CHAIN, 50)
            .unwrap();
        assert_eq!(paid(&r), [0], "no deposit to {other}");
    }

    #[test]
    fn forged_expired_and_wrong_chain_vouchers_are_refused_and_the_rest_pay() {
        let mut slots = BTreeMap::new();
        let mut e = Escrow(&mut slots);
        let (alice, mallory, node) = (key(1), key(2), Address::repeat_byte(0xee));
        let payer = address_of(&alice);
        e.deposit(payer, node, U256::from(1_000u64)).unwrap();
        let mut forged = voucher(&mallory, node, 900, 100, 900);
        forged.payer = payer;
        let mut wrong_chain = voucher(&alice, node, 900, 100, 900);
        let v = Voucher {
            payer,
            payee: node,
            cumulative: U256::from(900u64),
            expiry: 100,
        };
        let sk = k256::ecdsa::SigningKey::from_slice(alice.as_slice()).unwrap();
        let (sig, recid) = sk
            .sign_prehash_recoverable(v.signing_hash(1).as_slice())
            .unwrap();
        wrong_chain.signature =
            alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd())
                .as_bytes()
                .to_vec()
                .into();
        let r = e
            .redeem(
                node,
                &[
                    forged,
                    wrong_chain,
                    voucher(&alice, node, 900, 40, 900),
                    voucher(&alice, node, 100, 100, 100),
                ],
                CHAIN,
                50,
            )
            .unwrap();
        assert_eq!(paid(&r), [u64::MAX, u64::MAX, u64::MAX, 100]);
        match &r[2] {
            Redemption::Refused { reason, .. } => assert!(reason.contains("expired"), "{reason}"),
            o => panic!("{o:?}"),
        }
        assert!(e.redeem(node, &[], CHAIN, 50).is_err());
    }

    #[test]
    fn a_withdrawal_waits_the_delay_and_the_node_redeems_meanwhile() {
        let mut slots = BTreeMap::new();
        let mut e = Escrow(&mut slots);
        e.set_delay(60).unwrap();
        let (alice, node) = (key(1), Address::repeat_byte(0xee));
        let payer = address_of(&alice);
        assert!(e.deposit(payer, node, U256::ZERO).is_err());
        assert!(
            e.start_withdrawal(payer, node, 0).is_err(),
            "nothing deposited"
        );
        e.deposit(payer, node, U256::from(1_000u64)).unwrap();
        let e1 = e.withdraw(payer, node, 10).unwrap_err().to_string();
        assert!(e1.contains("announce the withdrawal first"), "{e1}");
        assert_eq!(e.start_withdrawal(payer, node, 10).unwrap(), 70);
        assert!(
            e.start_withdrawal(payer, node, 11).is_err(),
            "announced once"
        );
        let e2 = e.withdraw(payer, node, 69).unwrap_err().to_string();
        assert!(e2.contains("1 s from now"), "{e2}");
        // the race: the node redeems during the delay and is paid
        let r = e
            .redeem(node, &[voucher(&alice, node, 400, 1_000, 400)], CHAIN, 69)
            .unwrap();
        assert_eq!(paid(&r), [400]);
        assert_eq!(e.withdraw(payer, node, 70).unwrap(), U256::from(600u64));
        // after it, the old voucher collects nothing more; a new deposit starts afresh
        let r = e
            .redeem(node, &[voucher(&alice, node, 900, 1_000, 900)], CHAIN, 71)
            .unwrap();
        assert_eq!(paid(&r), [0]);
        e.deposit(payer, node, U256::from(50u64)).unwrap();
        let r = e
            .redeem(
                node,
                &[voucher(&alice, node, 2_000, 1_000, 1_000)],
                CHAIN,
                72,
            )
            .unwrap();
        assert_eq!(paid(&r), [50]);
    }
}
