//! The backend line. [`open`] is the one place that reads `backend = "local" | "aws"`: it
//! returns a [`Backend`] with the pipeline's streams, the stack, and the [`Plan`] (which stages
//! this process runs, with their settings, and where the lake is). `main`, the headless
//! commands, `soak` and the App use these and never look at the backend themselves.
//!
//! - `local`: streams as on-disk logs, the lake a folder; `local_stack`: those folders as a
//!   stack.
//! - `aws`: Kinesis, Firehose, S3, Athena and CloudFormation through the AWS SDK.
//! - `layout`: where this process keeps its state; `settings`: each stage's settings.

pub mod aws;
pub mod layout;
pub mod local;
pub mod local_stack;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use crate::config::{Backend as Kind, Loaded};
use crate::pipeline::Streams;
use crate::query::QueryService;
use crate::stack::Stack;
pub use layout::Layout;
pub use settings::Plan;

/// Everything above the backend line needs of the backend.
pub struct Backend {
    /// The readings and anomaly streams.
    pub streams: Arc<dyn Streams>,
    /// The stack the pipeline runs on.
    pub stack: Arc<dyn Stack>,
    /// What this process runs, and where.
    pub plan: Plan,
    /// The query engine over the lake (the embedded one, or Athena), or why there is none.
    pub query: Result<Arc<dyn QueryService>, String>,
    /// The runtime the backend's calls (and the dashboard's background tasks) run on. It lives
    /// as long as the streams that use it.
    runtime: tokio::runtime::Runtime,
}

impl Backend {
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }
}

/// A runtime of two workers, for the SDK's calls and the dashboard's background tasks.
pub fn runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")
}

/// How often a deploy or delete polls while the stack is in progress. Debug builds (the
/// tests, against moto, which settles at once) may shorten it with `IOTAA_STACK_POLL_MS`;
/// release builds have no such hook.
fn stack_poll() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("IOTAA_STACK_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    aws::POLL
}

/// The configured backend's stack, for the `stack` commands: it need not be deployed. On AWS a
/// missing region or credentials is one line.
pub fn stack(loaded: &Loaded) -> Result<Arc<dyn Stack>> {
    Ok(match loaded.config.backend {
        Kind::Local => Arc::new(local_stack::LocalStack::new(loaded)),
        Kind::Aws => Arc::new(aws::stack::AwsStack::new(loaded, stack_poll())?),
    })
}

/// Opens the configured backend for the pipeline. Locally: opens (creating) both streams. On
/// AWS: finds the deployed stack (one line when it is not deployed, not complete, or deployed
/// with another `Ingest`), and keeps this process's state under `<data_dir>/aws/<stack>/`.
pub fn open(loaded: &Loaded) -> Result<Backend> {
    let runtime = runtime("backend")?;
    match loaded.config.backend {
        Kind::Local => {
            let layout = Layout::new(loaded);
            layout.migrate_legacy();
            let streams = Arc::new(local::LocalStreams::open(&layout, loaded)?);
            Ok(Backend {
                streams,
                stack: Arc::new(local_stack::LocalStack::new(loaded)),
                plan: Plan::new(layout, loaded),
                query: embedded_query(loaded).map_err(|e| crate::text::report_chain(&e)),
                runtime,
            })
        }
        Kind::Aws => {
            let opened = aws::open(loaded, &runtime)?;
            let stack = aws::stack::AwsStack::with_sdk(
                loaded,
                opened.deployed.sdk.clone(),
                stack_poll(),
                self::runtime("aws-stack")?,
            );
            Ok(Backend {
                streams: opened.streams,
                stack: Arc::new(stack),
                plan: opened.plan,
                query: athena(loaded, &opened.deployed).map_err(|e| crate::text::report_chain(&e)),
                runtime,
            })
        }
    }
}

/// The configured backend's query engine alone (for `iotaa query`, which needs no streams):
/// the embedded engine over the local lake, or Athena in the deployed stack's workgroup. The
/// stack is found on `runtime`, the one the queries will run on (the SDK's connections belong
/// to the runtime that opened them).
pub fn query(loaded: &Loaded, runtime: &tokio::runtime::Runtime) -> Result<Arc<dyn QueryService>> {
    match loaded.config.backend {
        Kind::Local => embedded_query(loaded),
        Kind::Aws => {
            let deployed = runtime.block_on(aws::deployed_stack(loaded))?;
            athena(loaded, &deployed)
        }
    }
}

fn athena(loaded: &Loaded, deployed: &aws::Deployed) -> Result<Arc<dyn QueryService>> {
    Ok(Arc::new(aws::athena::Athena::new(
        deployed,
        loaded.config.query.max_rows as usize,
    )?))
}

/// The embedded engine over `<data_dir>/lake/` plus `delivery.prefix`, with `[query]`'s
/// database, table and row cap.
#[cfg(feature = "sql")]
fn embedded_query(loaded: &Loaded) -> Result<Arc<dyn QueryService>> {
    use crate::query::{DEFAULT_MEMORY_LIMIT_BYTES, Embedded, EngineOptions};
    let q = &loaded.config.query;
    let options = EngineOptions {
        database: q.database.clone(),
        table: q.table.clone(),
        max_rows: q.max_rows as usize,
        memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
    };
    let engine = Embedded::new(
        &Layout::new(loaded).lake(),
        &loaded.config.delivery.prefix,
        options,
    )
    .map_err(|e| color_eyre::eyre::eyre!("the query engine cannot start: {e}"))?;
    Ok(Arc::new(engine))
}

#[cfg(not(feature = "sql"))]
fn embedded_query(_loaded: &Loaded) -> Result<Arc<dyn QueryService>> {
    Err(color_eyre::eyre::eyre!(
        "this build has no SQL engine (built without the `sql` feature)"
    ))
}
