//! Writes a batch of new objects as one pack and its index, instead of a loose file per object.
//!
//! A run appends its events in one batch; written loose, each event costs three files (blob,
//! tree, commit), and file creation dominates. One pack (version 2, undeltified) plus a version 2
//! index is two files for the whole batch. Git and gix read such packs like any other; `git gc`
//! later folds them into one.

use std::io::{self, Write};
use std::path::Path;

use gix::ObjectId;
use gix::objs::Kind;

use super::deflate::Deflater;

/// One object to store: its id (already computed) and its canonical bytes.
pub struct PackObject {
    /// Its id, computed by the caller.
    pub id: ObjectId,
    /// Blob, tree or commit.
    pub kind: Kind,
    /// Its canonical bytes, uncompressed.
    pub data: Vec<u8>,
}

/// Where each object landed, for the index.
struct IndexEntry {
    id: ObjectId,
    offset: u32,
    crc32: u32,
}

/// Writes `objects` as `pack-<checksum>.pack` and `.idx` in `<objects_dir>/pack`.
///
/// The pack is renamed into place before its index, as git does: readers only see a pack once
/// its index exists, so a crash leaves at most an unused pack file, never a broken one.
pub fn write_pack(
    objects_dir: &Path,
    objects: &[PackObject],
    deflater: &mut Deflater,
) -> io::Result<()> {
    let (pack, entries) = encode_pack(objects, deflater)?;
    let pack_checksum = &pack[pack.len() - 20..];
    let index = encode_index(entries, pack_checksum)?;
    let pack_dir = objects_dir.join("pack");
    std::fs::create_dir_all(&pack_dir)?;
    let name = format!("pack-{}", crate::digest::hex(pack_checksum));
    persist(&pack_dir, &format!("{name}.pack"), &pack)?;
    persist(&pack_dir, &format!("{name}.idx"), &index)
}

fn persist(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut file = tempfile::Builder::new()
        .prefix("tmp_pack_")
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    // Packs are read-only in git's object store.
    let mut permissions = file.as_file().metadata()?.permissions();
    permissions.set_readonly(true);
    file.as_file().set_permissions(permissions)?;
    file.persist(dir.join(name)).map_err(|err| err.error)?;
    Ok(())
}

fn encode_pack(
    objects: &[PackObject],
    deflater: &mut Deflater,
) -> io::Result<(Vec<u8>, Vec<IndexEntry>)> {
    // A batch may hold one object twice (two playbooks' empty stderr is one blob). Git refuses
    // a pack whose header counts more objects than its index lists, so each goes in once.
    let mut seen = std::collections::HashSet::with_capacity(objects.len());
    let objects: Vec<&PackObject> = objects
        .iter()
        .filter(|object| seen.insert(object.id))
        .collect();
    let count = u32::try_from(objects.len()).map_err(io::Error::other)?;
    let mut pack =
        Vec::with_capacity(objects.iter().map(|o| o.data.len() / 2 + 16).sum::<usize>() + 32);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    let mut entries = Vec::with_capacity(objects.len());
    for object in objects {
        let offset = u32::try_from(pack.len())
            .ok()
            .filter(|offset| *offset < 0x8000_0000)
            .ok_or_else(|| io::Error::other("a batch larger than 2 GiB cannot be packed"))?;
        let start = pack.len();
        write_entry_header(&mut pack, pack_type(object.kind), object.data.len());
        deflater.compress(&[&object.data], &mut pack)?;
        let crc32 = crc32fast::hash(&pack[start..]);
        entries.push(IndexEntry {
            id: object.id,
            offset,
            crc32,
        });
    }
    let checksum = sha1(&pack)?;
    pack.extend_from_slice(checksum.as_bytes());
    Ok((pack, entries))
}

/// Pack object types: commit 1, tree 2, blob 3, tag 4.
fn pack_type(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

/// Type in bits 4–6 of the first byte, size in 4 bits then 7-bit groups, low bits first.
fn write_entry_header(out: &mut Vec<u8>, kind: u8, size: usize) {
    let mut size = size as u64;
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

/// Index version 2: fan-out table, sorted ids, CRC-32s, 31-bit offsets, then both checksums.
fn encode_index(mut entries: Vec<IndexEntry>, pack_checksum: &[u8]) -> io::Result<Vec<u8>> {
    entries.sort_by_key(|entry| entry.id);
    let mut index = Vec::with_capacity(8 + 256 * 4 + entries.len() * 28 + 40);
    index.extend_from_slice(&[0xff, b't', b'O', b'c']);
    index.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for entry in &entries {
        fanout[usize::from(entry.id.as_bytes()[0])] += 1;
    }
    let mut running = 0u32;
    for count in fanout {
        running += count;
        index.extend_from_slice(&running.to_be_bytes());
    }
    for entry in &entries {
        index.extend_from_slice(entry.id.as_bytes());
    }
    for entry in &entries {
        index.extend_from_slice(&entry.crc32.to_be_bytes());
    }
    for entry in &entries {
        index.extend_from_slice(&entry.offset.to_be_bytes());
    }
    index.extend_from_slice(pack_checksum);
    let checksum = sha1(&index)?;
    index.extend_from_slice(checksum.as_bytes());
    Ok(index)
}

fn sha1(bytes: &[u8]) -> io::Result<ObjectId> {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(bytes);
    hasher.try_finalize().map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_given_twice_is_packed_once_and_git_reads_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let init = std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(init.success());
        let blob = |text: &str| {
            let data = text.as_bytes().to_vec();
            PackObject {
                id: gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Blob, &data).unwrap(),
                kind: Kind::Blob,
                data,
            }
        };
        let objects = [blob(""), blob("stdout\n"), blob("")];
        let objects_dir = dir.path().join("objects");
        write_pack(&objects_dir, &objects, &mut Deflater::new(1)).unwrap();

        let pack = std::fs::read_dir(objects_dir.join("pack"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|ext| ext == "idx"))
            .unwrap();
        let verify = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(dir.path())
            .args(["verify-pack", "-v"])
            .arg(&pack)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success(),
            "{report}{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        assert!(report.contains("non delta: 2 objects"), "{report}");
    }

    #[test]
    fn entry_headers_encode_type_and_size_like_git() {
        let mut out = Vec::new();
        write_entry_header(&mut out, 3, 5);
        assert_eq!(out, vec![0x35]);
        out.clear();
        // 300 = 0b1_0010_1100: low 4 bits 1100, then 0b1_0010 = 18.
        write_entry_header(&mut out, 1, 300);
        assert_eq!(out, vec![0x80 | 0x10 | 0x0c, 18]);
    }
}
