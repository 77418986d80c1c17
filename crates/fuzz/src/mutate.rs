//! Byte-level mutations in the manner of libFuzzer's: flips, interesting values, inserted,
//! erased and repeated ranges, splices with another corpus input, and the target's
//! dictionary of tokens (JSON keys, tar and armor markers). A seeded xorshift keeps a run
//! repeatable.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Inputs never grow past this: parsers' size limits are tested elsewhere.
const MAX_LEN: usize = 64 * 1024;

const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"-1",
    b"0",
    b"4294967295",
    b"18446744073709551616",
    b"1e999",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"../",
    b"/",
    b"\n",
    b"=",
];

pub fn mutate(input: &mut Vec<u8>, other: &[u8], dictionary: &[&[u8]], rng: &mut Rng) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(9) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 if !input.is_empty() => {
                // Erase a range.
                let start = rng.below(input.len());
                let len = 1 + rng.below((input.len() - start).min(64));
                input.drain(start..start + len);
            }
            3 if !input.is_empty() => {
                // Repeat a range.
                let start = rng.below(input.len());
                let len = 1 + rng.below((input.len() - start).min(64));
                let at = rng.below(input.len() + 1);
                let piece: Vec<u8> = input[start..start + len].to_vec();
                input.splice(at..at, piece);
            }
            4 => insert(input, INTERESTING[rng.below(INTERESTING.len())], rng),
            5 if !dictionary.is_empty() => {
                insert(input, dictionary[rng.below(dictionary.len())], rng)
            }
            6 if !other.is_empty() => {
                // Splice: our head, the other's tail.
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            7 if !input.is_empty() => {
                // Overwrite with a dictionary token or an interesting value.
                let token = if !dictionary.is_empty() && rng.below(2) == 0 {
                    dictionary[rng.below(dictionary.len())]
                } else {
                    INTERESTING[rng.below(INTERESTING.len())]
                };
                let at = rng.below(input.len());
                let end = (at + token.len()).min(input.len());
                input.splice(at..end, token.iter().copied());
            }
            _ => {
                // A run of one byte: long names, deep nesting.
                let at = rng.below(input.len() + 1);
                let byte = INTERESTING[rng.below(INTERESTING.len())][0];
                let n = 1 + rng.below(300);
                input.splice(at..at, std::iter::repeat_n(byte, n));
            }
        }
    }
    input.truncate(MAX_LEN);
}

fn insert(input: &mut Vec<u8>, token: &[u8], rng: &mut Rng) {
    let at = rng.below(input.len() + 1);
    input.splice(at..at, token.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_repeatable_and_bounded() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut v = b"{\"a\": [1, 2]}".to_vec();
            for _ in 0..1000 {
                mutate(&mut v, b"other", &[b"\"key\""], &mut rng);
            }
            v
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(9).len() <= MAX_LEN);
    }
}
