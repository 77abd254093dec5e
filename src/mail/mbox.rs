//! Streaming mbox reader (mboxrd): one message in memory at a time, however big the file.

use std::io::{self, BufRead};

/// One message cut from an mbox, with the byte offset of its `From ` line (for the
/// quarantine's source field, so an admin can find it again).
#[derive(Debug)]
pub struct MboxMessage {
    pub offset: u64,
    pub raw: Vec<u8>,
}

pub struct MboxReader<R> {
    input: R,
    offset: u64,
    pending_from_line: Option<u64>,
    line: Vec<u8>,
    finished: bool,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            offset: 0,
            pending_from_line: None,
            line: Vec::with_capacity(256),
            finished: false,
        }
    }

    /// Bytes consumed so far (for progress bars).
    pub fn position(&self) -> u64 {
        self.offset
    }

    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let n = self.input.read_until(b'\n', &mut self.line)?;
        self.offset += n as u64;
        Ok(n > 0)
    }

    fn next_message(&mut self) -> io::Result<Option<MboxMessage>> {
        // Skip anything before the first separator (a file may start with blank lines).
        let start = match self.pending_from_line.take() {
            Some(start) => start,
            None => loop {
                let line_start = self.offset;
                if !self.read_line()? {
                    return Ok(None);
                }
                if self.line.starts_with(b"From ") {
                    break line_start;
                }
            },
        };
        let mut raw = Vec::new();
        loop {
            let line_start = self.offset;
            if !self.read_line()? {
                self.finished = true;
                break;
            }
            if self.line.starts_with(b"From ") {
                self.pending_from_line = Some(line_start);
                break;
            }
            raw.extend_from_slice(unquote_from(&self.line));
        }
        trim_separator_blank_line(&mut raw);
        Ok(Some(MboxMessage { offset: start, raw }))
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = io::Result<MboxMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished && self.pending_from_line.is_none() {
            return None;
        }
        self.next_message().transpose()
    }
}

/// mboxrd: a body line `>From ` (any number of `>`) was quoted once on writing.
fn unquote_from(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") {
        &line[1..]
    } else {
        line
    }
}

/// The blank line before the next `From ` belongs to the mbox format, not the message.
fn trim_separator_blank_line(raw: &mut Vec<u8>) {
    if raw.ends_with(b"\r\n\r\n") {
        raw.truncate(raw.len() - 2);
    } else if raw.ends_with(b"\n\n") {
        raw.truncate(raw.len() - 1);
    }
}

/// Writes one message in mboxrd form (used by the benchmark and tests).
pub fn write_message(out: &mut impl io::Write, sender: &str, raw: &[u8]) -> io::Result<()> {
    writeln!(out, "From {sender} Thu Jan  1 00:00:00 2026")?;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let quotes = line.iter().take_while(|&&b| b == b'>').count();
        if line[quotes..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    if !raw.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> Vec<MboxMessage> {
        MboxReader::new(data)
            .collect::<io::Result<Vec<_>>>()
            .unwrap()
    }

    #[test]
    fn splits_and_unquotes() {
        let data = b"From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\n>From here\n>>From there\n\nFrom c@d Mon Jan 1 00:00:00 2024\nSubject: two\n\nbody\n";
        let messages = read_all(data);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].raw, b"Subject: one\n\nFrom here\n>From there\n");
        assert_eq!(messages[1].raw, b"Subject: two\n\nbody\n");
        assert_eq!(messages[1].offset, 72);
    }

    #[test]
    fn round_trips_through_the_writer() {
        let originals: [&[u8]; 2] = [
            b"Subject: a\n\nFrom me\n>From you\n",
            b"Subject: b\r\n\r\nx\r\n",
        ];
        let mut mbox = Vec::new();
        for raw in originals {
            write_message(&mut mbox, "x@y", raw).unwrap();
        }
        let read: Vec<Vec<u8>> = read_all(&mbox).into_iter().map(|m| m.raw).collect();
        assert_eq!(
            read,
            originals.iter().map(|r| r.to_vec()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn empty_input_has_no_messages() {
        assert!(read_all(b"").is_empty());
        assert!(read_all(b"\n\n").is_empty());
    }
}
