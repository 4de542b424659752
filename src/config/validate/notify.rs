//! `[notify]`: the commands run on events (docs/notifications.md). Each
//! is a program given by its absolute path (run directly, without a shell)
//! and its own arguments; the event's arguments follow them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::Validator;
use crate::config::raw::{RawNotify, StringOrList};
use crate::config::{Error, Notify};

/// A command's default time limit.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most words in one command (its own, before the event's).
const MAX_WORDS: usize = 32;
/// The longest word.
const MAX_WORD: usize = 4096;

impl Validator<'_> {
    pub(super) fn notify(&self, r: RawNotify) -> Result<Notify, Error> {
        let timeout = self.duration_where(
            "notify.timeout",
            r.timeout,
            DEFAULT_TIMEOUT,
            |d| (Duration::from_millis(100)..=Duration::from_secs(600)).contains(&d),
            "must be 100ms..600s",
        )?;
        Ok(Notify {
            master: self.command("notify.master", r.master)?,
            backup: self.command("notify.backup", r.backup)?,
            fault: self.command("notify.fault", r.fault)?,
            stop: self.command("notify.stop", r.stop)?,
            node: self.command("notify.node", r.node)?,
            timeout,
        })
    }

    fn command(&self, key: &str, v: Option<StringOrList>) -> Result<Option<Vec<String>>, Error> {
        let (words, shown): (Vec<String>, String) = match v {
            None => return Ok(None),
            Some(StringOrList::Str(s)) => (
                s.split_whitespace().map(str::to_owned).collect(),
                format!("{s:?}"),
            ),
            Some(StringOrList::List(l)) => {
                let shown = format!("{l:?}");
                (l, shown)
            }
        };
        let Some(program) = words.first() else {
            return self.fail(key, shown, "must name a program (an absolute path)");
        };
        if words.len() > MAX_WORDS {
            return self.fail(key, shown, &format!("must have at most {MAX_WORDS} words"));
        }
        if words.iter().any(|w| w.len() > MAX_WORD || w.contains('\0')) {
            return self.fail(
                key,
                shown,
                &format!("each word must be at most {MAX_WORD} bytes, without NUL"),
            );
        }
        let path = Path::new(program);
        if !path.is_absolute() {
            return self.fail(
                key,
                shown,
                "the program must be an absolute path (it is run without a shell or PATH)",
            );
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(Some(words)),
            Ok(_) => self.fail(key, shown, &format!("{program} is not an executable file")),
            Err(e) => self.fail(key, shown, &format!("{program}: {e}")),
        }
    }
}
