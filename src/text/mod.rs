//! Text from people kept inert on its way out: escaping for GitLab (and Mattermost) Markdown,
//! so a reason, a name or a commit subject shown in a merge request, a note, a train table, the
//! dashboard issue or a chat reply can neither mention, reference, link, embed, format, open
//! HTML nor run a quick action ([`markdown`]); the same for the chat formats announcements are
//! posted in, Slack's mrkdwn and plain text ([`chat`]); bounded excerpts of long answers, such
//! as an error body from GitLab or a registry, and texts cut to GitLab's limits ([`excerpt`]);
//! durations as people read them ([`duration`]). Pure: no I/O, no clock.
//!
//! YAML has its own rules and lives with the YAML code: values and comments written into files
//! go through [`crate::yaml::quote`].

pub mod chat;
pub mod duration;
pub mod excerpt;
pub mod markdown;
