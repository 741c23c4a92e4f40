//! Which instance a call goes to.

use crate::scope::Scope;

/// How [`Caller::one`](super::Caller::one) (and [`cast`](super::Caller::cast)) choose among
/// the instances a search matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// The nearest scope first (an instance in this process, then this composite, this host,
    /// the LAN), and among those the one with the fewest calls in flight. The default.
    #[default]
    NearestFirst,
    /// The fewest calls in flight, whatever the scope; ties taken in turn.
    LeastOutstanding,
    /// Each instance in turn.
    RoundRobin,
    /// Any instance, at random.
    Random,
    /// The instance the call's key belongs to (rendezvous hashing: every key has one owner,
    /// and when an instance comes or goes only the keys it owned move). Set by
    /// [`Call::key`](super::Call::key); without a key, a call goes nearest-first.
    KeyAffinity,
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        Ok(match s {
            "nearest-first" | "nearest" => Policy::NearestFirst,
            "least-outstanding" | "least" => Policy::LeastOutstanding,
            "round-robin" => Policy::RoundRobin,
            "random" => Policy::Random,
            "key-affinity" | "key" => Policy::KeyAffinity,
            other => {
                return Err(format!(
                "no policy {other:?} (nearest-first, least-outstanding, round-robin, random, key-affinity)"
            ))
            }
        })
    }
}

/// What a policy needs to know of one instance.
pub(super) struct Candidate {
    /// The scope of the directory that matched it.
    pub(super) at: Scope,
    /// Calls in flight on it.
    pub(super) outstanding: usize,
    /// May it take a call now (open, under its bound, not excluded)?
    pub(super) eligible: bool,
    /// May it take calls at all (open, not excluded)? A key's owner that is merely full is
    /// waited for, not passed over.
    pub(super) live: bool,
    /// Its identity, hashed (for key affinity).
    pub(super) identity: u64,
}

/// What a pick decided.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pick {
    /// Call this one.
    Instance(usize),
    /// The chosen instance (or every instance) is full: wait for room.
    Wait,
    /// No instance can take the call.
    None,
}

/// Chooses among `candidates` by `policy`; `cursor` is where turns start (and is moved on).
pub(super) fn pick(candidates: &[Candidate], policy: Policy, key: Option<&str>, cursor: &mut usize) -> Pick {
    let n = candidates.len();
    if !candidates.iter().any(|c| c.live) {
        return Pick::None;
    }
    let from_cursor = |cursor: usize| (0..n).map(move |k| (cursor + k) % n);
    let chosen = match policy {
        Policy::KeyAffinity => {
            let key = hash_bytes(key.unwrap_or("").as_bytes());
            let owner = (0..n)
                .filter(|&i| candidates[i].live)
                .max_by_key(|&i| (score(candidates[i].identity, key), i))
                .expect("one is live");
            return if candidates[owner].eligible {
                Pick::Instance(owner)
            } else {
                Pick::Wait
            };
        }
        Policy::Random => {
            // (Counted, then walked to: a pick allocates nothing.)
            let eligible = candidates.iter().filter(|c| c.eligible).count();
            (eligible > 0).then(|| {
                let nth = fastrand::usize(..eligible);
                (0..n)
                    .filter(|&i| candidates[i].eligible)
                    .nth(nth)
                    .expect("counted above")
            })
        }
        Policy::RoundRobin => from_cursor(*cursor).find(|&i| candidates[i].eligible),
        Policy::LeastOutstanding => from_cursor(*cursor)
            .filter(|&i| candidates[i].eligible)
            .min_by_key(|&i| candidates[i].outstanding),
        Policy::NearestFirst => from_cursor(*cursor)
            .filter(|&i| candidates[i].eligible)
            .min_by_key(|&i| (candidates[i].at, candidates[i].outstanding)),
    };
    match chosen {
        Some(i) => {
            *cursor = i + 1;
            Pick::Instance(i)
        }
        None => Pick::Wait,
    }
}

/// FNV-1a over `bytes`, 64 bits.
pub(super) fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rendezvous score of an instance for a key: the pair's hash, mixed (SplitMix64's
/// finaliser) so that every instance's scores are independent of the others'.
fn score(identity: u64, key: u64) -> u64 {
    let mut z = identity ^ key.rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                at: Scope::Host,
                outstanding: 0,
                eligible: true,
                live: true,
                identity: hash_bytes(format!("worker-{i}").as_bytes()),
            })
            .collect()
    }

    fn owner(c: &[Candidate], key: &str) -> usize {
        match pick(c, Policy::KeyAffinity, Some(key), &mut 0) {
            Pick::Instance(i) => i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_keys_of_an_instance_that_leaves_move() {
        let mut c = candidates(8);
        let keys: Vec<String> = (0..4000).map(|k| format!("user-{k}")).collect();
        let before: Vec<usize> = keys.iter().map(|k| owner(&c, k)).collect();
        c[3].live = false;
        c[3].eligible = false;
        let mut moved = 0;
        for (k, was) in keys.iter().zip(&before) {
            let now = owner(&c, k);
            if *was == 3 {
                assert_ne!(now, 3);
                moved += 1;
            } else {
                assert_eq!(now, *was, "a key of a staying instance moved");
            }
        }
        // About one in eight keys belonged to the instance that left.
        assert!((350..650).contains(&moved), "{moved} of 4000 moved");
    }

    #[test]
    fn a_full_owner_is_waited_for_and_nearest_first_prefers_the_nearest_scope() {
        let mut c = candidates(3);
        let key_owner = owner(&c, "k");
        c[key_owner].eligible = false;
        assert_eq!(pick(&c, Policy::KeyAffinity, Some("k"), &mut 0), Pick::Wait);
        let mut c = candidates(3);
        c[0].at = Scope::Lan;
        c[1].at = Scope::Group;
        c[1].outstanding = 5;
        c[2].at = Scope::Host;
        assert_eq!(pick(&c, Policy::NearestFirst, None, &mut 0), Pick::Instance(1));
        assert_eq!(
            pick(&c, Policy::LeastOutstanding, None, &mut 0),
            Pick::Instance(0)
        );
        c[1].eligible = false;
        assert_eq!(pick(&c, Policy::NearestFirst, None, &mut 0), Pick::Instance(2));
        for x in &mut c {
            x.eligible = false;
        }
        assert_eq!(pick(&c, Policy::RoundRobin, None, &mut 0), Pick::Wait);
        for x in &mut c {
            x.live = false;
        }
        assert_eq!(pick(&c, Policy::Random, None, &mut 0), Pick::None);
    }

    #[test]
    fn round_robin_takes_each_in_turn() {
        let c = candidates(3);
        let mut cursor = 0;
        let turns: Vec<Pick> = (0..4)
            .map(|_| pick(&c, Policy::RoundRobin, None, &mut cursor))
            .collect();
        assert_eq!(
            turns,
            [
                Pick::Instance(0),
                Pick::Instance(1),
                Pick::Instance(2),
                Pick::Instance(0)
            ]
        );
    }
}
