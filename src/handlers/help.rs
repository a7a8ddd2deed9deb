//! `help [command]`: the command list, or one command's usage.

use super::{Asked, Handled};
use crate::chatops::command::Verb;
use crate::chatops::reply::Help;

/// The help text for `topic` (every command when `None`).
pub fn help(asked: &Asked<'_>, topic: Option<Verb>) -> Handled {
    let help = Help {
        invocation: asked.invocation.to_string(),
        topic,
    };
    asked.render(asked.handlers.replies.help(asked.flavor, &help))
}
