//! The client's bytes, below the WebSocket codec. actix-http's codec buffers a frame
//! until all of it has arrived and only then compares its length with the limit, so a
//! header declaring 2^40 bytes would make it buffer whatever follows. [`GuardedPayload`]
//! reads each frame header as it streams in and refuses the frame at once when it
//! declares more than `limits.max_frame_bytes`.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

use crate::watch::Watch;

/// Follows frame boundaries in a client's byte stream (RFC 6455 §5.2) without buffering
/// payloads: only the up to 14 header bytes are kept.
#[derive(Debug)]
pub struct FrameLimit {
    max: u64,
    /// Payload bytes of the current frame still to pass.
    skip: u64,
    header: [u8; 14],
    have: u8,
}

impl FrameLimit {
    pub fn new(max: usize) -> FrameLimit {
        FrameLimit {
            max: max as u64,
            skip: 0,
            header: [0; 14],
            have: 0,
        }
    }

    /// The header's full length once its first two bytes are known.
    fn header_len(&self) -> usize {
        let masked = self.header[1] & 0x80 != 0;
        let ext = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if masked { 4 } else { 0 }
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        }
    }

    /// Takes the next bytes of the stream; `Err(declared)` when a frame header declares
    /// a payload longer than the limit.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), u64> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            let have = usize::from(self.have);
            let want = if have < 2 { 2 } else { self.header_len() };
            let n = (want - have).min(bytes.len());
            self.header[have..have + n].copy_from_slice(&bytes[..n]);
            // At most 14: fits.
            self.have = (have + n) as u8;
            bytes = &bytes[n..];
            if have + n < 2 || have + n < self.header_len() {
                continue;
            }
            let len = self.payload_len();
            if len > self.max {
                return Err(len);
            }
            self.skip = len;
            self.have = 0;
        }
        Ok(())
    }
}

/// The request payload of a WebSocket, cut off at the first oversized frame header.
pub struct GuardedPayload<S> {
    inner: S,
    limit: FrameLimit,
    /// Told when a frame was refused, so the session can close with 1009.
    watch: Watch,
}

impl<S> GuardedPayload<S> {
    pub fn new(inner: S, max_frame_bytes: usize, watch: Watch) -> Self {
        GuardedPayload {
            inner,
            limit: FrameLimit::new(max_frame_bytes),
            watch,
        }
    }
}

impl<S> Stream for GuardedPayload<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.watch.is_oversize() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.limit.feed(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(_) => {
                    self.watch.set_oversize();
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FrameLimit;

    fn header(len: u64, masked: bool) -> Vec<u8> {
        let mut h = vec![0x81];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => h.push(m | len as u8),
            126..=65535 => {
                h.push(m | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(m | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        if masked {
            h.extend_from_slice(&[1, 2, 3, 4]);
        }
        h
    }

    #[test]
    fn frames_within_the_limit_pass_whatever_the_chunking() {
        let mut stream = Vec::new();
        for len in [0u64, 5, 125, 126, 300, 1000] {
            stream.extend(header(len, true));
            stream.extend(std::iter::repeat_n(b'x', len as usize));
        }
        for chunk in [1, 2, 3, 7, 64, stream.len()] {
            let mut f = FrameLimit::new(1000);
            for part in stream.chunks(chunk) {
                assert_eq!(f.feed(part), Ok(()), "chunks of {chunk}");
            }
        }
    }

    #[test]
    fn an_oversized_header_is_refused_before_its_payload() {
        let mut f = FrameLimit::new(1000);
        let mut stream = header(10, true);
        stream.extend([b'y'; 10]);
        assert_eq!(f.feed(&stream), Ok(()));
        let huge = header(1 << 40, true);
        // Byte by byte: refused on the header's last byte, with no payload seen.
        let (last, head) = huge.split_last().unwrap();
        for b in head {
            assert_eq!(f.feed(&[*b]), Ok(()));
        }
        assert_eq!(f.feed(&[*last]), Err(1 << 40));
        assert_eq!(FrameLimit::new(1000).feed(&header(1001, true)), Err(1001));
        assert_eq!(FrameLimit::new(70_000).feed(&header(65_535, false)), Ok(()));
    }
}
