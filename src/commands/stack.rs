//! `iotaa stack deploy|status|events|outputs|delete`: the configured backend's stack (the data
//! folder locally, the CloudFormation stack on AWS), through [`crate::stack::Stack`].

use std::process::ExitCode;

use color_eyre::eyre::{Result, eyre};

use super::confirm;
use crate::backend;
use crate::cli::StackCommand;
use crate::config::{Backend, Loaded};
use crate::stack::Stdio;

pub fn stack(loaded: &Loaded, action: &StackCommand) -> Result<ExitCode> {
    let mut loaded = loaded.clone();
    if let StackCommand::Deploy {
        artifact: Some(path),
    } = action
    {
        loaded.config.aws.detector_artifact = Some(path.clone());
    }
    if let StackCommand::Delete {
        delete_lake: true, ..
    } = action
    {
        loaded.config.aws.delete_lake = true;
    }
    let stack = backend::stack(&loaded)?;
    let ok = match action {
        StackCommand::Deploy { .. } => stack.deploy(&Stdio).map_err(|e| eyre!(e))?,
        StackCommand::Delete { yes, .. } => {
            if !yes && !confirm(&stack.delete_question())? {
                return Ok(ExitCode::FAILURE);
            }
            stack.delete(&Stdio).map_err(|e| eyre!(e))?
        }
        StackCommand::Policy { deploy } => return print_policy(&loaded, *deploy),
        StackCommand::Status | StackCommand::Events | StackCommand::Outputs => {
            let snap = stack.snapshot().map_err(|e| eyre!(e))?;
            if snap.status.is_none() {
                println!("{}: not deployed (run `iotaa stack deploy`)", snap.title);
                return Ok(ExitCode::FAILURE);
            }
            match action {
                StackCommand::Status => {
                    for line in snap.status_lines() {
                        println!("{line}");
                    }
                }
                StackCommand::Events if snap.events.is_empty() => {
                    println!("{}: no events", snap.title);
                }
                StackCommand::Events => {
                    for line in &snap.events {
                        println!("{line}");
                    }
                }
                _ => {
                    for (k, v) in &snap.outputs {
                        println!("{k:<24} {v}");
                    }
                }
            }
            true
        }
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `stack policy [--deploy]`: the IAM policy, filled for this account, region and stack.
fn print_policy(loaded: &Loaded, deploy: bool) -> Result<ExitCode> {
    if loaded.config.backend != Backend::Aws {
        return Err(eyre!(
            "stack policy: the local backend needs no IAM policy (use `iotaa --backend aws stack policy`)"
        ));
    }
    let runtime = backend::runtime("iotaa-policy")?;
    let policy = runtime.block_on(async {
        let sdk = backend::aws::sdk_config(loaded).await?;
        let c = &loaded.config;
        backend::aws::policy::policy(&sdk, &c.aws.stack_name, &c.query.database, deploy).await
    })?;
    println!("{policy}");
    Ok(ExitCode::SUCCESS)
}
