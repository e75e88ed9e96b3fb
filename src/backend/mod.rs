//! Backends: what the pipeline's traits run on. `local` is the embedded default; `aws` holds
//! the CloudFormation stack operations (the rest of the AWS backend is not built yet).

pub mod aws;
pub mod local;
