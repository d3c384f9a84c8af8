//! The onnxruntime engine: the ONNX Runtime shared library (from the PyPI
//! `onnxruntime` wheel, fetched by `scripts/fetch-models`) loaded at start-up
//! through `ort`. A session is built once per model and handles any input
//! shape; sessions are pooled because `ort` runs need exclusive access.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use gradnet_types::{Tensor, TensorData};
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};

use crate::error::{Result, RuntimeError};
use crate::signature::Signature;
use crate::CacheStats;

/// File name of the library inside the wheel and in `models/`.
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.32.0";

/// The process's one ONNX Runtime environment and the library it came from.
struct Loaded {
    env: ort::environment::Environment,
    library: PathBuf,
    version: String,
}

/// Set once the library has loaded; a failed attempt leaves it unset so a
/// corrected path can still be tried.
static LOADED: Mutex<Option<&'static Loaded>> = Mutex::new(None);

/// Loads the library once per process; asking for another file later is an
/// error rather than a silent mix.
fn environment(library: &Path) -> Result<&'static Loaded> {
    let unavailable = RuntimeError::Unavailable;
    let library = library.canonicalize().map_err(|e| {
        unavailable(format!(
            "onnxruntime library {}: {e} (scripts/fetch-models fetches {LIBRARY_FILE})",
            library.display()
        ))
    })?;
    let mut slot = LOADED.lock().expect("onnxruntime environment lock");
    if let Some(loaded) = *slot {
        if loaded.library != library {
            return Err(unavailable(format!(
                "onnxruntime is already loaded from {}; one library per process",
                loaded.library.display()
            )));
        }
        return Ok(loaded);
    }
    let env = ort::init_from(&library)
        .map_err(|e| unavailable(format!("cannot load {}: {e}", library.display())))?
        .with_name("gradnet")
        .build()
        .map_err(|e| unavailable(format!("onnxruntime environment: {e}")))?;
    let version = library_version(&library);
    let loaded: &'static Loaded = Box::leak(Box::new(Loaded {
        env,
        library,
        version,
    }));
    *slot = Some(loaded);
    Ok(loaded)
}

/// `libonnxruntime.so.1.32.0` → `1.32.0`; the file name is how the wheel
/// versions it.
fn library_version(library: &Path) -> String {
    let name = library.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split_once(".so.")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) struct Engine {
    loaded: &'static Loaded,
    threads: usize,
    /// A run that found an idle session is a hit; one that built a session, a miss.
    hits: AtomicU64,
    misses: AtomicU64,
}

/// One model's sessions: as many as have ever run at once, built on demand.
pub(crate) struct Sessions {
    bytes: Vec<u8>,
    idle: Mutex<Vec<Session>>,
}

impl Engine {
    pub(crate) fn new(library: &Path, threads: usize) -> Result<Self> {
        Ok(Engine {
            loaded: environment(library)?,
            threads,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn version(&self) -> &str {
        &self.loaded.version
    }

    /// Builds the first session now so a model onnxruntime cannot load is
    /// refused at load time, not at the first request.
    pub(crate) fn load(&self, bytes: &[u8]) -> Result<Sessions> {
        let first = self.session(bytes)?;
        Ok(Sessions {
            bytes: bytes.to_vec(),
            idle: Mutex::new(vec![first]),
        })
    }

    fn session(&self, bytes: &[u8]) -> Result<Session> {
        let unloadable = |e: String| RuntimeError::Unloadable(format!("onnxruntime: {e}"));
        Session::builder(&self.loaded.env)
            .map_err(|e| unloadable(e.to_string()))?
            .with_intra_threads(self.threads)
            .map_err(|e| unloadable(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| unloadable(e.to_string()))?
            .commit_from_memory(bytes)
            .map_err(|e| unloadable(e.to_string()))
    }

    pub(crate) fn run(
        &self,
        sessions: &Sessions,
        signature: &Signature,
        inputs: &gradnet_types::NamedTensors,
    ) -> Result<gradnet_types::NamedTensors> {
        let popped = sessions.idle.lock().expect("session pool").pop();
        let mut session = match popped {
            Some(s) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                s
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.session(&sessions.bytes)?
            }
        };
        let result = run_session(&mut session, signature, inputs);
        sessions.idle.lock().expect("session pool").push(session);
        result
    }
}

fn run_session(
    session: &mut Session,
    signature: &Signature,
    inputs: &gradnet_types::NamedTensors,
) -> Result<gradnet_types::NamedTensors> {
    let values = signature
        .inputs
        .iter()
        .map(|spec| Ok((spec.name.as_str(), input_value(&inputs[&spec.name])?)))
        .collect::<Result<Vec<_>>>()?;
    let outputs = session
        .run(values)
        .map_err(|e| RuntimeError::Execution(format!("onnxruntime: {e}")))?;
    signature
        .outputs
        .iter()
        .map(|spec| {
            let v = outputs.get(&spec.name).ok_or_else(|| {
                RuntimeError::Execution(format!("onnxruntime returned no output {:?}", spec.name))
            })?;
            Ok((spec.name.clone(), output_tensor(v)?))
        })
        .collect()
}

fn bad(e: ort::Error) -> RuntimeError {
    RuntimeError::BadInput(format!("onnxruntime: {e}"))
}

/// Inputs are lent to onnxruntime without a copy (strings excepted).
fn input_value(t: &Tensor) -> Result<SessionInputValue<'_>> {
    let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    Ok(match t.data() {
        TensorData::F32(v) => TensorRef::from_array_view((shape, &v[..]))
            .map_err(bad)?
            .into(),
        TensorData::F64(v) => TensorRef::from_array_view((shape, &v[..]))
            .map_err(bad)?
            .into(),
        TensorData::I32(v) => TensorRef::from_array_view((shape, &v[..]))
            .map_err(bad)?
            .into(),
        TensorData::I64(v) => TensorRef::from_array_view((shape, &v[..]))
            .map_err(bad)?
            .into(),
        TensorData::Bool(v) => TensorRef::from_array_view((shape, &v[..]))
            .map_err(bad)?
            .into(),
        TensorData::String(v) => ort::value::Tensor::from_string_array((shape, &v[..]))
            .map_err(bad)?
            .into(),
    })
}

/// Outputs come back in gradnet's six dtypes, widened the way the deterministic
/// engine widens them, so both engines give the same dtypes.
fn output_tensor(v: &DynValue) -> Result<Tensor> {
    let exec = |e: ort::Error| RuntimeError::Execution(format!("onnxruntime output: {e}"));
    let ValueType::Tensor { ty, shape, .. } = v.dtype() else {
        return Err(RuntimeError::Execution(
            "onnxruntime returned a sequence or map; only tensors are supported".into(),
        ));
    };
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    macro_rules! widen {
        ($t:ty, $variant:ident, $to:ty) => {{
            let (_, s) = v.try_extract_tensor::<$t>().map_err(exec)?;
            TensorData::$variant(s.iter().map(|&x| x as $to).collect())
        }};
    }
    use TensorElementType as E;
    let data = match ty {
        E::Float32 => TensorData::F32(v.try_extract_tensor::<f32>().map_err(exec)?.1.to_vec()),
        E::Float64 => TensorData::F64(v.try_extract_tensor::<f64>().map_err(exec)?.1.to_vec()),
        E::Int32 => TensorData::I32(v.try_extract_tensor::<i32>().map_err(exec)?.1.to_vec()),
        E::Int64 => TensorData::I64(v.try_extract_tensor::<i64>().map_err(exec)?.1.to_vec()),
        E::Bool => TensorData::Bool(v.try_extract_tensor::<bool>().map_err(exec)?.1.to_vec()),
        E::String => TensorData::String(v.try_extract_strings().map_err(exec)?.1),
        E::Int8 => widen!(i8, I32, i32),
        E::Int16 => widen!(i16, I32, i32),
        E::Uint8 => widen!(u8, I32, i32),
        E::Uint16 => widen!(u16, I32, i32),
        E::Uint32 => widen!(u32, I64, i64),
        other => {
            return Err(RuntimeError::Execution(format!(
                "output element type {other:?} is not supported"
            )))
        }
    };
    Tensor::new(dims, data).map_err(|e| RuntimeError::Execution(e.to_string()))
}
