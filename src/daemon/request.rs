//! A person's request as the HTTP layer decodes it: a chat command (Slack, Mattermost) or an
//! MR comment addressed to promoter, with who asked and where the answer goes. Pure data: the
//! server builds it after verifying the sender, the daemon loop hands it to the wiring's
//! handlers, and the answer travels back as a value on [`ReplyTo`].

use std::fmt;

use tokio::sync::oneshot;

use crate::chatops::reply::Flavor;

/// One command a person typed.
#[derive(Debug)]
pub struct ChatRequest {
    /// Where it was typed, for escaping the answer.
    pub flavor: Flavor,
    /// The command as the person invoked it (`/promoter`, `@promoter`), for help texts.
    pub invocation: String,
    /// The text after the invocation: input for the command language.
    pub text: String,
    /// Who asked, where.
    pub asker: Asker,
    /// Where the answer goes.
    pub reply: ReplyTo,
}

/// Who asked, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    /// Identities to authorize, the stable one first (`slack:U024BE7LH`).
    pub identities: Vec<String>,
    /// Where, for the MR ("Slack #deploys").
    pub place: String,
}

/// Where the answer to a [`ChatRequest`] goes.
#[derive(Debug)]
pub enum ReplyTo {
    /// A chat's HTTP request waits for the first answer (within the chat's time limit); a
    /// command that runs a reconcile answers [`FirstAnswer::Working`] and its result follows.
    Http(oneshot::Sender<FirstAnswer>),
    /// A comment on merge request `iid` by `author`: the answer is a comment on the same MR.
    MergeRequest {
        /// The MR the comment is on.
        iid: u64,
        /// Who wrote the comment (comments by promoter itself are ignored).
        author: String,
    },
}

/// The first answer to a chat's HTTP request.
#[derive(Debug)]
pub enum FirstAnswer {
    /// The whole answer, shown only to the person who asked.
    Done(String),
    /// Too many commands are waiting for a reconcile: this one was dropped unrun.
    Busy,
    /// The command waits for its turn in the loop; `result` brings the answer for the channel.
    Working {
        /// What to say meanwhile.
        note: String,
        /// The answer, when the command ran.
        result: oneshot::Receiver<String>,
    },
}

impl fmt::Display for ChatRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.asker.identities.first().map_or("?", String::as_str);
        let verb = self.text.split_whitespace().next().unwrap_or("help");
        write!(f, "{who} in {}: {verb}", self.asker.place)
    }
}

impl PartialEq for ChatRequest {
    /// Equal when the same person asked the same thing in the same place for the same kind of
    /// answer (reply channels themselves are not comparable).
    fn eq(&self, other: &Self) -> bool {
        let same_reply = match (&self.reply, &other.reply) {
            (ReplyTo::Http(_), ReplyTo::Http(_)) => true,
            (
                ReplyTo::MergeRequest { iid, author },
                ReplyTo::MergeRequest {
                    iid: other_iid,
                    author: other_author,
                },
            ) => iid == other_iid && author == other_author,
            _ => false,
        };
        same_reply
            && self.flavor == other.flavor
            && self.invocation == other.invocation
            && self.text == other.text
            && self.asker == other.asker
    }
}

impl Eq for ChatRequest {}
