//! What kind of device a file lives on, for the IO-token default.
//!
//! IO tokens bound the reads and writes in flight. How many pay off depends
//! on the device: an NVMe drive has many hardware queues and wants a deep
//! queue, a SATA SSD saturates around its NCQ depth, a spinning disk seeks
//! between every extra concurrent stream. The defaults are 24 / 12 / 4.
//! They are rules of thumb, not measurements: `benches/io_queue_depth.sh`
//! measures the curve on the machine at hand, and on this project's virtio
//! disk it is flat past QD 4 (docs/performance.md), which says nothing
//! about real NVMe or SATA devices either way.
//!
//! Detection reads sysfs (Linux only): the file's device number, then
//! `/sys/dev/block/MAJ:MIN` (a partition is resolved to its disk, a
//! device-mapper or md device to the disks under it), then the disk's
//! `queue/rotational` and its name. Anything it cannot tell — tmpfs and
//! overlay (no block device), virtio or Xen disks (whose `rotational` flag
//! says nothing about the storage behind them), stacked devices over mixed
//! disks — is reported as unknown with the reason, and the caller falls back
//! to the SSD depth.

use std::fs;
use std::path::{Path, PathBuf};

/// A kind of storage device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// NVMe: 24 IO tokens.
    Nvme,
    /// SATA/SAS SSD (non-rotational, not NVMe): 12 IO tokens.
    Ssd,
    /// Rotational disk: 4 IO tokens.
    Hdd,
}

impl StorageType {
    /// The IO tokens this kind gets by default.
    pub fn io_tokens(self) -> usize {
        match self {
            StorageType::Nvme => 24,
            StorageType::Ssd => 12,
            StorageType::Hdd => 4,
        }
    }
}

named_enum!(
    StorageType,
    "storage type",
    [
        StorageType::Nvme => "nvme",
        StorageType::Ssd => "ssd",
        StorageType::Hdd => "hdd",
    ]
);

/// What [`detect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The kind, when it could be told.
    pub kind: Option<StorageType>,
    /// The disk it looked at (`nvme0n1`, `sda`, …), when it got that far.
    pub disk: Option<String>,
    /// How it decided, or why it could not (for `-v`).
    pub reason: String,
}

impl Detection {
    fn unknown(disk: Option<String>, reason: impl Into<String>) -> Detection {
        Detection {
            kind: None,
            disk,
            reason: reason.into(),
        }
    }
}

/// Finds the kind of device that holds `path` (a file or a folder).
pub fn detect(path: &Path) -> Detection {
    match device_of(path) {
        Ok(Some((major, minor))) => detect_in(Path::new("/sys"), major, minor),
        Ok(None) => Detection::unknown(None, "no block device behind it (tmpfs, overlay, network)"),
        Err(e) => Detection::unknown(None, format!("cannot stat it: {e}")),
    }
}

#[cfg(target_os = "linux")]
fn device_of(path: &Path) -> std::io::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::metadata(path)?.dev() as libc::dev_t;
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    // Major 0 is the "unnamed" device of tmpfs, overlayfs, NFS and friends.
    Ok((major != 0).then_some((major, minor)))
}

#[cfg(not(target_os = "linux"))]
fn device_of(_path: &Path) -> std::io::Result<Option<(u32, u32)>> {
    Ok(None)
}

/// [`detect`] against a sysfs tree rooted at `sys` (the real one is
/// `/sys`; tests pass fake trees).
pub fn detect_in(sys: &Path, major: u32, minor: u32) -> Detection {
    let link = sys.join(format!("dev/block/{major}:{minor}"));
    let Ok(node) = fs::canonicalize(&link) else {
        return Detection::unknown(None, format!("{} does not exist", link.display()));
    };
    classify(&node, 0)
}

/// Stacked devices (dm over md over partitions…) are followed this deep.
const MAX_STACK: usize = 4;

fn classify(node: &Path, depth: usize) -> Detection {
    // A partition has a `partition` file; its disk is the parent folder.
    let disk_dir: PathBuf = if node.join("partition").exists() {
        match node.parent() {
            Some(p) => p.to_path_buf(),
            None => return Detection::unknown(None, "partition without a parent disk"),
        }
    } else {
        node.to_path_buf()
    };
    let name = disk_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let disk = Some(name.clone());
    // Device-mapper and md: decide from the disks underneath.
    let slaves = disk_dir.join("slaves");
    if name.starts_with("dm-") || name.starts_with("md") {
        if depth >= MAX_STACK {
            return Detection::unknown(disk, "device stack too deep");
        }
        let Ok(entries) = fs::read_dir(&slaves) else {
            return Detection::unknown(disk, "stacked device without readable slaves");
        };
        let mut kinds = Vec::new();
        for entry in entries.flatten() {
            let Ok(under) = fs::canonicalize(entry.path()) else {
                continue;
            };
            kinds.push(classify(&under, depth + 1).kind);
        }
        return match kinds.first() {
            Some(&Some(k)) if kinds.iter().all(|&x| x == Some(k)) => Detection {
                kind: Some(k),
                disk,
                reason: format!("{name}: every device under it is {k}"),
            },
            Some(_) => Detection::unknown(
                disk,
                format!("{name}: devices under it differ or are unknown"),
            ),
            None => Detection::unknown(disk, format!("{name}: no devices under it")),
        };
    }
    // Paravirtual disks report whatever the hypervisor says (virtio says
    // rotational = 1 for an SSD-backed image): their flag tells nothing.
    if name.starts_with("vd") || name.starts_with("xvd") {
        return Detection::unknown(disk, format!("{name} is a virtual disk"));
    }
    let rotational = fs::read_to_string(disk_dir.join("queue/rotational"));
    match rotational.as_deref().map(str::trim) {
        Ok("1") => Detection {
            kind: Some(StorageType::Hdd),
            disk,
            reason: format!("{name}: queue/rotational = 1"),
        },
        Ok("0") if name.starts_with("nvme") => Detection {
            kind: Some(StorageType::Nvme),
            disk,
            reason: format!("{name}: NVMe, not rotational"),
        },
        Ok("0") => Detection {
            kind: Some(StorageType::Ssd),
            disk,
            reason: format!("{name}: queue/rotational = 0"),
        },
        _ => Detection::unknown(disk, format!("{name}: no readable queue/rotational")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake sysfs: `devices/…/block/<disk>[/<part>]` with queue files and
    /// `dev/block/MAJ:MIN` links, as the kernel lays them out.
    struct FakeSys {
        dir: tempfile::TempDir,
    }

    impl FakeSys {
        fn new() -> FakeSys {
            let dir = tempfile::tempdir().expect("temp dir");
            fs::create_dir_all(dir.path().join("dev/block")).expect("mkdir");
            FakeSys { dir }
        }
        fn root(&self) -> &Path {
            self.dir.path()
        }
        /// A disk with a rotational flag (None: no queue folder).
        fn disk(&self, name: &str, rotational: Option<&str>, dev: &str) -> PathBuf {
            let d = self.root().join("devices/pci0/block").join(name);
            fs::create_dir_all(d.join("queue")).expect("mkdir");
            if let Some(r) = rotational {
                fs::write(d.join("queue/rotational"), format!("{r}\n")).expect("write");
            }
            symlink(&d, self.root().join("dev/block").join(dev)).expect("link");
            d
        }
        fn partition(&self, disk: &Path, name: &str, dev: &str) {
            let p = disk.join(name);
            fs::create_dir_all(&p).expect("mkdir");
            fs::write(p.join("partition"), "1\n").expect("write");
            symlink(&p, self.root().join("dev/block").join(dev)).expect("link");
        }
        fn mapper(&self, name: &str, dev: &str, under: &[&Path]) {
            let d = self.root().join("devices/virtual/block").join(name);
            fs::create_dir_all(d.join("slaves")).expect("mkdir");
            for (i, u) in under.iter().enumerate() {
                symlink(u, d.join("slaves").join(format!("s{i}"))).expect("link");
            }
            symlink(&d, self.root().join("dev/block").join(dev)).expect("link");
        }
    }

    fn kind(sys: &FakeSys, major: u32, minor: u32) -> Option<StorageType> {
        detect_in(sys.root(), major, minor).kind
    }

    #[test]
    fn disks_partitions_and_stacks() {
        let sys = FakeSys::new();
        let nvme = sys.disk("nvme0n1", Some("0"), "259:0");
        sys.partition(&nvme, "nvme0n1p2", "259:2");
        let sda = sys.disk("sda", Some("0"), "8:0");
        sys.partition(&sda, "sda1", "8:1");
        let sdb = sys.disk("sdb", Some("1"), "8:16");
        sys.partition(&sdb, "sdb1", "8:17");
        sys.disk("vda", Some("1"), "254:0");
        sys.disk("sdz", None, "8:240");
        sys.mapper("dm-0", "253:0", &[&nvme.join("nvme0n1p2")]);
        sys.mapper("dm-1", "253:1", &[&sda.join("sda1"), &sdb.join("sdb1")]);

        assert_eq!(kind(&sys, 259, 0), Some(StorageType::Nvme));
        assert_eq!(
            kind(&sys, 259, 2),
            Some(StorageType::Nvme),
            "partition -> disk"
        );
        assert_eq!(kind(&sys, 8, 1), Some(StorageType::Ssd));
        assert_eq!(kind(&sys, 8, 17), Some(StorageType::Hdd));
        assert_eq!(kind(&sys, 253, 0), Some(StorageType::Nvme), "dm over nvme");
        let mixed = detect_in(sys.root(), 253, 1);
        assert_eq!(mixed.kind, None, "dm over an SSD and an HDD");
        assert!(mixed.reason.contains("differ"), "{}", mixed.reason);
        let virt = detect_in(sys.root(), 254, 0);
        assert_eq!(virt.kind, None);
        assert!(virt.reason.contains("virtual disk"), "{}", virt.reason);
        assert_eq!(kind(&sys, 8, 240), None, "no queue/rotational");
        let missing = detect_in(sys.root(), 7, 7);
        assert_eq!(missing.kind, None);
        assert!(
            missing.reason.contains("does not exist"),
            "{}",
            missing.reason
        );
    }

    #[test]
    fn names_and_tokens() {
        for k in [StorageType::Nvme, StorageType::Ssd, StorageType::Hdd] {
            assert_eq!(k.name().parse::<StorageType>().expect("round trip"), k);
        }
        assert_eq!(
            [StorageType::Nvme, StorageType::Ssd, StorageType::Hdd].map(StorageType::io_tokens),
            [24, 12, 4]
        );
        let e = "floppy".parse::<StorageType>().expect_err("unknown");
        assert!(e.to_string().contains("nvme, ssd or hdd"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_system_without_a_block_device_is_unknown() {
        // procfs, like tmpfs and overlay, has the anonymous major 0.
        let d = detect(Path::new("/proc/self"));
        assert_eq!(d.kind, None);
        assert!(d.reason.contains("no block device"), "{}", d.reason);
    }
}
