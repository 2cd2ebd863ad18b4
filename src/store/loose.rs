//! Writes one object as a loose file, the way git does: zlib of `<kind> <size>\0<bytes>` in
//! `objects/<2 hex>/<38 hex>`, written to a temporary file beside it and renamed into place so
//! that a reader never sees half an object.

use std::io::{self, Write};
use std::path::Path;

use gix::ObjectId;
use gix::objs::Kind;

use super::deflate::Deflater;

/// Writes object `id` (`kind`, `data`) under `objects_dir` unless it is already there.
pub fn write(
    objects_dir: &Path,
    id: &ObjectId,
    kind: Kind,
    data: &[u8],
    deflater: &mut Deflater,
) -> io::Result<()> {
    let hex = id.to_hex().to_string();
    let dir = objects_dir.join(&hex[..2]);
    let path = dir.join(&hex[2..]);
    if path.exists() {
        // Objects are named by their content: the one there is this one.
        return Ok(());
    }
    let header = format!("{kind} {}\0", data.len());
    let mut compressed = Vec::with_capacity(data.len() / 2 + 64);
    deflater.compress(&[header.as_bytes(), data], &mut compressed)?;
    // The temporary file goes into the object's own directory, as git does: a rename within one
    // directory is cheaper than one between two.
    let temp = || {
        tempfile::Builder::new()
            .prefix("tmp_obj_")
            .permissions(read_only())
            .tempfile_in(&dir)
    };
    let mut file = match temp() {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
            temp()?
        }
        Err(err) => return Err(err),
    };
    file.write_all(&compressed)?;
    match file.persist(&path) {
        Ok(_) => Ok(()),
        // Another writer put the same object there first.
        Err(_) if path.exists() => Ok(()),
        Err(err) => Err(err.error),
    }
}

/// Loose objects are read-only in git's object store.
fn read_only() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o444)
}
