//! `iotaa stack deploy|status|events|outputs|delete`: the configured backend's stack (the data
//! folder locally, the CloudFormation stack on AWS), through [`crate::stack::Stack`].

use std::process::ExitCode;

use color_eyre::eyre::{Result, eyre};

use super::confirm;
use crate::backend;
use crate::cli::StackCommand;
use crate::config::Loaded;
use crate::stack::Stdio;

pub fn stack(loaded: &Loaded, action: &StackCommand) -> Result<ExitCode> {
    let mut loaded = loaded.clone();
    if let StackCommand::Deploy {
        artifact: Some(path),
    } = action
    {
        loaded.config.aws.detector_artifact = Some(path.clone());
    }
    let stack = backend::stack(&loaded)?;
    let ok = match action {
        StackCommand::Deploy { .. } => stack.deploy(&Stdio).map_err(|e| eyre!(e))?,
        StackCommand::Delete { yes } => {
            if !yes && !confirm(&stack.delete_question())? {
                return Ok(ExitCode::FAILURE);
            }
            stack.delete(&Stdio).map_err(|e| eyre!(e))?
        }
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
