//! One spelling per setting value. `named_enum!` gives a fieldless settings
//! enum its names once — `ALL`, `name()`, `Display`, a `FromStr` whose error
//! lists every name — and, with the `clap` feature, `clap::ValueEnum` from
//! the same list, so the command line parses, completes and documents exactly
//! the names the library accepts.

/// `named_enum!(Type, "what it is", [Type::A => "a", Type::B => "b"]);`
/// The names are the CLI's spelling; parsing trims and ignores ASCII case.
macro_rules! named_enum {
    ($ty:ident, $what:literal, [$($variant:path => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in the order the help lists them.
            pub const ALL: &'static [$ty] = &[$($variant),+];

            /// The value's name as the command line spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $($variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::Error;

            fn from_str(s: &str) -> $crate::Result<$ty> {
                let wanted = s.trim();
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| {
                        $crate::Error::usage(format!(
                            "unknown {} '{wanted}': expected {}",
                            $what,
                            $crate::names::one_of($ty::ALL.iter().map(|v| v.name()))
                        ))
                    })
            }
        }

        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                $ty::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }
    };
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::one_of;
    use crate::storage::StorageType;
    use crate::{batch::Policy, ChunkMethod, Optimize, ReaderKind, SpawnStyle};

    #[test]
    fn lists_read_as_english() {
        assert_eq!(one_of([].into_iter()), "");
        assert_eq!(one_of(["a"].into_iter()), "a");
        assert_eq!(one_of(["a", "b", "c"].into_iter()), "a, b or c");
    }

    /// Every name parses back to its value in any case, and an unknown
    /// name's error lists them all.
    fn round_trips<T>(all: &[T], what: &str)
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr<Err = crate::Error>,
    {
        for &v in all {
            let name = v.to_string();
            assert_eq!(name.parse::<T>().ok(), Some(v));
            assert_eq!(
                format!(" {} ", name.to_ascii_uppercase()).parse::<T>().ok(),
                Some(v)
            );
        }
        let err = "nonsense".parse::<T>().expect_err("not a name").to_string();
        assert!(err.contains(&format!("unknown {what} 'nonsense'")), "{err}");
        for v in all {
            assert!(err.contains(&v.to_string()), "{err}");
        }
    }

    #[test]
    fn every_settings_enum_round_trips() {
        round_trips(Policy::ALL, "scheduler");
        round_trips(ChunkMethod::ALL, "chunk method");
        round_trips(Optimize::ALL, "optimisation");
        round_trips(ReaderKind::ALL, "reader");
        round_trips(SpawnStyle::ALL, "spawn style");
        round_trips(StorageType::ALL, "storage type");
    }

    #[cfg(feature = "clap")]
    #[test]
    fn clap_sees_the_same_names() {
        use clap::ValueEnum;
        for &v in Policy::ALL {
            let pv = v.to_possible_value().expect("every value is visible");
            assert_eq!(pv.get_name(), v.name());
            assert_eq!(Policy::from_str(v.name(), true).ok(), Some(v));
        }
    }
}
