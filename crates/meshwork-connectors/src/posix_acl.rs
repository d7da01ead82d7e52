//! POSIX access control lists (POSIX.1e draft, as Linux keeps them): the `system.posix_acl_access`
//! extended attribute's binary form, and the access check the kernel makes with it.
//!
//! The attribute is outside input (any file's owner can set it): [`Acl::parse`] refuses anything
//! but whole 8-byte entries after a version-2 header, and an ACL without its three required
//! entries. Layout (`include/uapi/linux/posix_acl_xattr.h`): a little-endian `u32` version, then
//! entries of `u16` tag, `u16` permissions, `u32` id.

/// Read permission.
pub const READ: u16 = 4;
/// Search (directories) or execute permission.
pub const EXECUTE: u16 = 1;

const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const VERSION: u32 = 2;

/// One entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The file's owner.
    UserObj(u16),
    /// A named user.
    User(u32, u16),
    /// The file's group.
    GroupObj(u16),
    /// A named group.
    Group(u32, u16),
    /// The most that named users, the file's group and named groups get.
    Mask(u16),
    Other(u16),
}

/// A file's access: its ACL, or the ACL its mode bits amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub entries: Vec<Entry>,
}

impl Acl {
    /// The ACL of a file without extended entries: its mode's owner, group and other bits.
    pub fn from_mode(mode: u32) -> Acl {
        let bits = |shift: u32| ((mode >> shift) & 7) as u16;
        Acl {
            entries: vec![
                Entry::UserObj(bits(6)),
                Entry::GroupObj(bits(3)),
                Entry::Other(bits(0)),
            ],
        }
    }

    /// Reads the extended attribute's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Acl, String> {
        let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
            return Err("shorter than its header".into());
        };
        let version = u32::from_le_bytes(*head);
        if version != VERSION {
            return Err(format!("version {version}, not 2"));
        }
        if rest.len() % 8 != 0 {
            return Err(format!(
                "{} bytes of entries, not a multiple of 8",
                rest.len()
            ));
        }
        let mut entries = Vec::with_capacity(rest.len() / 8);
        for e in rest.chunks_exact(8) {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]) & 7;
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            entries.push(match tag {
                USER_OBJ => Entry::UserObj(perm),
                USER => Entry::User(id, perm),
                GROUP_OBJ => Entry::GroupObj(perm),
                GROUP => Entry::Group(id, perm),
                MASK => Entry::Mask(perm),
                OTHER => Entry::Other(perm),
                t => return Err(format!("unknown entry tag {t:#x}")),
            });
        }
        let count = |f: fn(&Entry) -> bool| entries.iter().filter(|e| f(e)).count();
        let (uo, go, o, m) = (
            count(|e| matches!(e, Entry::UserObj(_))),
            count(|e| matches!(e, Entry::GroupObj(_))),
            count(|e| matches!(e, Entry::Other(_))),
            count(|e| matches!(e, Entry::Mask(_))),
        );
        let named = count(|e| matches!(e, Entry::User(..) | Entry::Group(..)));
        if uo != 1 || go != 1 || o != 1 || m > 1 || (named > 0 && m == 0) {
            return Err("not a valid ACL: it needs one owner, group and other entry, and a mask when it names users or groups".into());
        }
        Ok(Acl { entries })
    }

    /// The attribute's bytes (for tests and fuzzing: the inverse of [`Acl::parse`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = VERSION.to_le_bytes().to_vec();
        for e in &self.entries {
            let (tag, perm, id) = match *e {
                Entry::UserObj(p) => (USER_OBJ, p, u32::MAX),
                Entry::User(id, p) => (USER, p, id),
                Entry::GroupObj(p) => (GROUP_OBJ, p, u32::MAX),
                Entry::Group(id, p) => (GROUP, p, id),
                Entry::Mask(p) => (MASK, p, u32::MAX),
                Entry::Other(p) => (OTHER, p, u32::MAX),
            };
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&perm.to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    fn mask(&self) -> u16 {
        self.entries
            .iter()
            .find_map(|e| match e {
                Entry::Mask(p) => Some(*p),
                _ => None,
            })
            .unwrap_or(7)
    }

    /// Whether a user (`uid`, in groups `gids`) gets `want` on a file owned by `owner` and
    /// `group`: the kernel's check (`posix_acl_permission`), the owner first, then a named user
    /// entry, then any matching group entry, then other.
    pub fn permits(&self, owner: u32, group: u32, uid: u32, gids: &[u32], want: u16) -> bool {
        let mask = self.mask();
        if uid == owner {
            return self
                .entries
                .iter()
                .any(|e| matches!(e, Entry::UserObj(p) if p & want == want));
        }
        for e in &self.entries {
            if let Entry::User(id, p) = e {
                if *id == uid {
                    return p & mask & want == want;
                }
            }
        }
        let mut in_a_group = false;
        for e in &self.entries {
            let (gid, p) = match *e {
                Entry::GroupObj(p) => (group, p),
                Entry::Group(gid, p) => (gid, p),
                _ => continue,
            };
            if gids.contains(&gid) {
                in_a_group = true;
                if p & mask & want == want {
                    return true;
                }
            }
        }
        if in_a_group {
            return false;
        }
        self.entries
            .iter()
            .any(|e| matches!(e, Entry::Other(p) if p & want == want))
    }

    /// Whether every entry gives `want` (the named ones through the mask): then anyone at all,
    /// whatever their user and groups, gets it. The folder connector's "everyone".
    pub fn everyone_gets(&self, want: u16) -> bool {
        let mask = self.mask();
        self.entries.iter().all(|e| match *e {
            Entry::UserObj(p) | Entry::Other(p) => p & want == want,
            Entry::User(_, p) | Entry::GroupObj(p) | Entry::Group(_, p) => p & mask & want == want,
            Entry::Mask(_) => true,
        })
    }

    /// Whether someone the file's ACL does not name at all (no owner, user or group entry
    /// matches them) gets `want`: what "other" gets.
    pub fn other_permits(&self, want: u16) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e, Entry::Other(p) if p & want == want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_named_user_entry_is_cut_by_the_mask() {
        let acl = Acl {
            entries: vec![
                Entry::UserObj(6),
                Entry::User(1001, 4),
                Entry::GroupObj(0),
                Entry::Mask(0),
                Entry::Other(0),
            ],
        };
        assert!(!acl.permits(1000, 100, 1001, &[100], READ));
        let acl = Acl {
            entries: acl
                .entries
                .iter()
                .map(|e| {
                    if let Entry::Mask(_) = e {
                        Entry::Mask(4)
                    } else {
                        *e
                    }
                })
                .collect(),
        };
        assert!(acl.permits(1000, 100, 1001, &[100], READ));
        assert!(!acl.permits(1000, 100, 1002, &[100], READ));
    }

    #[test]
    fn a_group_member_denied_by_its_group_does_not_fall_back_to_other() {
        // 604: other may read, the group may not; a member of the group may not.
        let acl = Acl::from_mode(0o604);
        assert!(!acl.permits(0, 50, 1001, &[50], READ));
        assert!(acl.permits(0, 50, 1001, &[51], READ));
    }

    #[test]
    fn broken_attributes_are_refused_with_what_is_wrong() {
        assert!(Acl::parse(&[2, 0]).unwrap_err().contains("header"));
        assert!(Acl::parse(&[3, 0, 0, 0]).unwrap_err().contains("version 3"));
        assert!(Acl::parse(&[2, 0, 0, 0, 1])
            .unwrap_err()
            .contains("multiple of 8"));
        let named_without_mask = Acl {
            entries: vec![
                Entry::UserObj(6),
                Entry::User(5, 4),
                Entry::GroupObj(4),
                Entry::Other(0),
            ],
        };
        assert!(Acl::parse(&named_without_mask.to_bytes()).is_err());
    }

    proptest! {
        /// Oracle: the classic mode-bit check, for ACLs that are only mode bits.
        #[test]
        fn a_plain_mode_grants_what_the_mode_bits_say(mode in 0u32..0o1000, uid in 0u32..4, gids in proptest::collection::vec(0u32..4, 0..3)) {
            let (owner, group) = (1, 2);
            let acl = Acl::parse(&Acl::from_mode(mode).to_bytes()).unwrap();
            let bits = if uid == owner { mode >> 6 } else if gids.contains(&group) { mode >> 3 } else { mode } & 7;
            prop_assert_eq!(acl.permits(owner, group, uid, &gids, READ), bits & 4 == 4);
        }

        #[test]
        fn parsing_any_bytes_never_panics_and_what_parses_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(acl) = Acl::parse(&bytes) {
                let again = Acl::parse(&acl.to_bytes()).unwrap();
                prop_assert_eq!(acl, again);
            }
        }
    }
}
