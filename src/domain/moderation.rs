//! Sensitive words (PROTOCOL.md §14): one automaton over the whole list, built when the
//! list changes, so a message is scanned once whatever the list's length.
//!
//! Case-insensitive for every script: text and words are folded character by character
//! (a character whose lower case is one character becomes it), which keeps character
//! positions, so a mask covers exactly the characters of the original that matched.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::protocol::webhook::{ModerationAction, ModerationList};

/// What the list says of one text.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// A word matched and the action is `reject`.
    Blocked,
    /// Words matched and the action is `mask`: the text with each matched word as `*`s.
    Masked(String),
}

/// The list, ready to match.
#[derive(Default)]
pub struct WordFilter {
    list: ModerationList,
    matcher: Option<AhoCorasick>,
}

fn fold_char(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

impl WordFilter {
    pub fn new(list: ModerationList) -> WordFilter {
        let matcher = match list.words.is_empty() {
            true => None,
            false => {
                let folded: Vec<String> = list.words.iter().map(|w| fold(w)).collect();
                // Leftmost-longest: of overlapping words the longest is masked whole.
                match AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&folded)
                {
                    Ok(m) => Some(m),
                    Err(e) => {
                        log::error!("the sensitive-word list cannot be compiled: {e}");
                        None
                    }
                }
            }
        };
        WordFilter { list, matcher }
    }

    pub fn list(&self) -> &ModerationList {
        &self.list
    }

    /// Checks `text`.
    pub fn check(&self, text: &str) -> Verdict {
        let Some(matcher) = &self.matcher else {
            return Verdict::Clean;
        };
        let folded = fold(text);
        let mut matches = matcher.find_iter(&folded).peekable();
        if matches.peek().is_none() {
            return Verdict::Clean;
        }
        if self.list.action == ModerationAction::Reject {
            return Verdict::Blocked;
        }
        // Byte ranges of the folded text, turned into character ranges of the original.
        let starts: Vec<usize> = folded.char_indices().map(|(i, _)| i).collect();
        let char_at = |byte: usize| starts.partition_point(|&s| s < byte);
        let mut masked = vec![false; starts.len()];
        for m in matches {
            for flag in &mut masked[char_at(m.start())..char_at(m.end())] {
                *flag = true;
            }
        }
        Verdict::Masked(
            text.chars()
                .zip(masked)
                .map(|(c, hide)| if hide { '*' } else { c })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(words: &[&str], action: ModerationAction) -> WordFilter {
        WordFilter::new(ModerationList {
            words: words.iter().map(|w| w.to_string()).collect(),
            action,
        })
    }

    #[test]
    fn matching_ignores_case_in_every_script_and_masks_characters() {
        let f = filter(&["BadWord", "假货", "ÄRGER"], ModerationAction::Mask);
        assert_eq!(
            f.check("this is a badword, 卖假货 und ärger!"),
            Verdict::Masked("this is a *******, 卖** und *****!".into())
        );
        assert_eq!(f.check("all fine"), Verdict::Clean);
        let r = filter(&["假货"], ModerationAction::Reject);
        assert_eq!(r.check("这是假货"), Verdict::Blocked);
        assert_eq!(r.check("真货"), Verdict::Clean);
        assert_eq!(WordFilter::default().check("anything"), Verdict::Clean);
    }

    #[test]
    fn of_overlapping_words_the_leftmost_longest_is_masked() {
        let f = filter(&["abc", "bcd", "ab"], ModerationAction::Mask);
        assert_eq!(f.check("xabcdx"), Verdict::Masked("x***dx".into()));
        assert_eq!(f.check("xabx bcd"), Verdict::Masked("x**x ***".into()));
    }
}
