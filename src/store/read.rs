//! Reading the `event.json` of many events at once, as fast as the object store allows.
//!
//! A long walk is mostly zlib (one tree and one blob to inflate per event) and then JSON. Three
//! things make the difference:
//!
//! - **Pack order.** After `git gc` the `event.json` blobs are deltas of one another, in chains
//!   up to 50 deep. gix's pack cache keeps only the objects it was asked for, so reading blobs in
//!   log order rebuilds most chains from their base again and again. An ofs-delta's base always
//!   lies earlier in its pack, so reading blobs in pack order finds nearly every base already
//!   cached (docs/performance.md has the figures). The order comes from the pack
//!   indexes and entry headers alone, never from inflating anything.
//! - **Delta families per thread.** Blobs whose chains end in the same base object go to the
//!   same thread, so each thread's cache holds the bases its own blobs need, and inflation is
//!   shared among the cores instead of waiting on one.
//! - **Decoding only what the caller keeps.** A fold passes a `keep` decoder that reads only
//!   the fields it uses; it runs on the thread that read the blob.

use std::path::Path;

use gix::ObjectId;
use gix::objs::{FindExt, Kind};

use super::{EVENT_FILE, ReadError, StoreError, with_pack_cache};
use crate::event::EventError;
use crate::repo::Repo;

/// Below this many events, threads cost more than they save.
const THREADED_MIN: usize = 2_000;
/// At most this many threads read (each with its own repository handle and pack cache).
const MAX_THREADS: usize = 4;

/// One event of the log to read: its commit (named in errors) and that commit's tree.
pub(super) type Link = (ObjectId, ObjectId);

/// What a walk makes of each `event.json`: [`crate::event::decode`] for whole events, or a
/// lighter decoder that reads only the fields its caller folds.
pub type Keep<T> = dyn Fn(&[u8]) -> Result<T, EventError> + Sync;

/// Reads every link's `event.json` and decodes it with `keep` (on whichever thread read it, so
/// a caller that keeps little of each event never holds the whole log in memory). Returned in
/// the order of `links`.
pub(super) fn events_of<T: Send>(
    repo: &gix::Repository,
    links: &[Link],
    keep: &Keep<T>,
) -> Result<Vec<T>, StoreError> {
    let threads = reading_threads(links.len());
    let blobs = on_threads(
        repo,
        threads,
        split_evenly(links.len(), threads),
        |repo, part| event_blobs(repo, links, part),
    )?;
    let blobs: Vec<ObjectId> = blobs.into_iter().flatten().collect();
    objects_of(repo, &blobs, Kind::Blob, &|position, bytes| {
        decode(links[position].0, bytes, keep)
    })
}

/// Decodes the object at a position of the walk from its bytes.
pub(super) type DecodeAt<'a, T> = dyn Fn(usize, &[u8]) -> Result<T, StoreError> + Sync + 'a;

/// Reads the objects `ids` (all of `kind`) in pack order on every core, and passes each to
/// `decode` with its position in `ids`. Returned in the order of `ids`.
pub(super) fn objects_of<T: Send>(
    repo: &gix::Repository,
    ids: &[ObjectId],
    kind: Kind,
    decode: &DecodeAt<'_, T>,
) -> Result<Vec<T>, StoreError> {
    let threads = reading_threads(ids.len());
    let (parts, pack_files) = pack_ordered_parts(repo, ids, threads);
    let decoded = on_threads(repo, threads, parts, |repo, part| {
        let mut packs = PackReader::new(&pack_files);
        read_and_decode(repo, &mut packs, ids, kind, part, decode)
    })?;
    let mut objects: Vec<Option<T>> = (0..ids.len()).map(|_| None).collect();
    for (position, object) in decoded.into_iter().flatten() {
        objects[position] = Some(object);
    }
    Ok(objects
        .into_iter()
        .map(|object| object.expect("every position is read exactly once"))
        .collect())
}

/// How many threads should read: one for a short walk or a single core.
fn reading_threads(events: usize) -> usize {
    if events < THREADED_MIN {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, MAX_THREADS)
}

/// `0..len` in `parts` contiguous runs of nearly equal length.
fn split_evenly(len: usize, parts: usize) -> Vec<Vec<usize>> {
    let chunk = len.div_ceil(parts.max(1)).max(1);
    (0..len)
        .collect::<Vec<_>>()
        .chunks(chunk)
        .map(<[usize]>::to_vec)
        .collect()
}

/// Runs `work` on each part: the first on this thread with `repo`, the others on threads of
/// their own, each with its own handle (gix handles are not `Send` without its `parallel`
/// feature and its build cost; opening one takes about a millisecond). Results in part order.
fn on_threads<P: Send, R: Send>(
    repo: &gix::Repository,
    threads: usize,
    parts: Vec<P>,
    work: impl Fn(&gix::Repository, P) -> Result<R, StoreError> + Sync,
) -> Result<Vec<R>, StoreError> {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Ok(Vec::new());
    };
    if threads <= 1 {
        let mut results = vec![work(repo, first)?];
        for part in parts {
            results.push(work(repo, part)?);
        }
        return Ok(results);
    }
    let git_dir = repo.git_dir();
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .map(|part| {
                scope.spawn(move || {
                    let repo = Repo::open(git_dir)
                        .map_err(|err| ReadError::OpenRepository(Box::new(err)))?;
                    work(&with_pack_cache(repo.gix().clone()), part)
                })
            })
            .collect();
        let mut results = vec![work(repo, first)];
        results.extend(
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a reading thread panicked")),
        );
        results.into_iter().collect()
    })
}

/// The `event.json` blob of each link at `positions`.
fn event_blobs(
    repo: &gix::Repository,
    links: &[Link],
    positions: Vec<usize>,
) -> Result<Vec<ObjectId>, StoreError> {
    let mut buf = Vec::new();
    positions
        .into_iter()
        .map(|position| {
            let (commit, tree) = links[position];
            event_blob(repo, commit, tree, &mut buf)
        })
        .collect()
}

/// The `event.json` blob of one event's tree.
pub(super) fn event_blob(
    repo: &gix::Repository,
    commit: ObjectId,
    tree: ObjectId,
    buf: &mut Vec<u8>,
) -> Result<ObjectId, StoreError> {
    let entries = repo
        .objects
        .find_tree_iter(&tree, buf)
        .map_err(ReadError::from)?;
    for entry in entries {
        let entry = entry.map_err(ReadError::from)?;
        if entry.filename == EVENT_FILE {
            return Ok(entry.oid.to_owned());
        }
    }
    Err(StoreError::NotAnEvent {
        commit,
        reason: format!("its tree has no {EVENT_FILE}"),
    })
}

/// Decodes `bytes`, the `event.json` of `commit`, with `keep`.
pub(super) fn decode<T>(commit: ObjectId, bytes: &[u8], keep: &Keep<T>) -> Result<T, StoreError> {
    keep(bytes).map_err(|err| StoreError::NotAnEvent {
        commit,
        reason: err.to_string(),
    })
}

/// Reads and decodes the objects of `part`, in that order: straight from their place in a
/// pack when it is known, else (or when that fails) through the object database, which also
/// reports what is wrong.
fn read_and_decode<T>(
    repo: &gix::Repository,
    packs: &mut PackReader,
    ids: &[ObjectId],
    kind: Kind,
    part: Vec<Located>,
    decode: &DecodeAt<'_, T>,
) -> Result<Vec<(usize, T)>, StoreError> {
    let mut buf = Vec::new();
    part.into_iter()
        .map(|Located { position, place }| {
            if let Some(place) = place
                && packs.read(place, kind, &mut buf)
            {
                return Ok((position, decode(position, &buf)?));
            }
            let object = repo
                .objects
                .find(&ids[position], &mut buf)
                .map_err(ReadError::from)?;
            if object.kind != kind {
                return Err(ReadError::WrongKind {
                    id: ids[position],
                    actual: object.kind,
                    expected: kind,
                }
                .into());
            }
            Ok((position, decode(position, object.data)?))
        })
        .collect()
}

/// An object to read: its position in the walk and, when packed, its place.
struct Located {
    position: usize,
    place: Option<Place>,
}

/// Reads objects at known places in the packs, without looking their ids up again: the
/// object database would search every index a second time for each one. The pack files are
/// shared by every thread (one mapping, not one a thread); the delta cache is per thread.
struct PackReader<'a> {
    files: &'a [Option<gix::odb::pack::data::File>],
    inflate: gix::zlib::Inflate,
    cache: gix::odb::pack::cache::lru::MemoryCappedHashmap,
}

impl<'a> PackReader<'a> {
    fn new(files: &'a [Option<gix::odb::pack::data::File>]) -> PackReader<'a> {
        PackReader {
            files,
            inflate: gix::zlib::Inflate::default(),
            cache: gix::odb::pack::cache::lru::MemoryCappedHashmap::new(super::PACK_CACHE_BYTES),
        }
    }

    /// Reads the object at `place` into `out`; false when it cannot (a base outside the pack,
    /// a damaged entry, not of `kind`), for the caller to read it the slow way.
    fn read(&mut self, place: Place, kind: Kind, out: &mut Vec<u8>) -> bool {
        let Some(file) = self.files.get(place.pack).and_then(Option::as_ref) else {
            return false;
        };
        let Ok(entry) = file.entry(place.offset) else {
            return false;
        };
        let no_base_outside_the_pack = |_: &gix::hash::oid, _: &mut Vec<u8>| Ok(None);
        matches!(
            file.decode_entry(entry, out, &mut self.inflate, &no_base_outside_the_pack, &mut self.cache),
            Ok(outcome) if outcome.kind == kind
        )
    }
}

/// An object's place in the packs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    pack: usize,
    offset: u64,
}

/// Positions into `ids` split into `threads` parts, each in the order to read it: packed
/// objects by pack and offset, with every delta family (objects whose chains end in the same
/// base) in one part; then the rest (loose, or in an alternate) in log order. Also returns the
/// packs' data files, for reading. Trouble reading the packs' indexes or headers only costs
/// speed: it falls back to log order.
fn pack_ordered_parts(
    repo: &gix::Repository,
    ids: &[ObjectId],
    threads: usize,
) -> (Vec<Vec<Located>>, Vec<Option<gix::odb::pack::data::File>>) {
    let packs = Packs::open(&repo.objects.store_ref().path().join("pack"), repo);
    let mut placed: Vec<(Place, usize)> = Vec::with_capacity(ids.len());
    let mut unplaced = Vec::new();
    let mut likely = 0;
    for (position, id) in ids.iter().enumerate() {
        match packs.place(id, &mut likely) {
            Some(place) => placed.push((place, position)),
            None => unplaced.push(position),
        }
    }
    placed.sort_unstable();
    let parts = if threads <= 1 {
        vec![placed]
    } else {
        packs.by_family(placed, threads)
    };
    let mut parts: Vec<Vec<Located>> = parts
        .into_iter()
        .map(|part| {
            part.into_iter()
                .map(|(place, position)| Located {
                    position,
                    place: Some(place),
                })
                .collect()
        })
        .collect();
    parts
        .last_mut()
        .expect("at least one part")
        .extend(unplaced.into_iter().map(|position| Located {
            position,
            place: None,
        }));
    (parts, packs.data)
}

/// The packs of the object store: their indexes and their data files (mapped, not read).
struct Packs {
    indexes: Vec<gix::odb::pack::index::File>,
    /// The data file of each index; `None` when it cannot be opened.
    data: Vec<Option<gix::odb::pack::data::File>>,
}

impl Packs {
    fn open(pack_dir: &Path, repo: &gix::Repository) -> Packs {
        let object_hash = repo.object_hash();
        let mut packs = Packs {
            indexes: Vec::new(),
            data: Vec::new(),
        };
        let Ok(entries) = std::fs::read_dir(pack_dir) else {
            return packs;
        };
        for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
            if path.extension().is_none_or(|ext| ext != "idx") {
                continue;
            }
            if let Ok(index) = gix::odb::pack::index::File::at(&path, object_hash) {
                packs.indexes.push(index);
                let data = gix::odb::pack::data::File::at(path.with_extension("pack"), object_hash);
                packs.data.push(data.ok());
            }
        }
        packs
    }

    /// Where object `id` is packed; `likely` is the pack to try first, and is updated (events
    /// written together sit in the same pack).
    fn place(&self, id: &ObjectId, likely: &mut usize) -> Option<Place> {
        let count = self.indexes.len();
        let first = *likely;
        let place = (0..count)
            .map(|step| (first + step) % count)
            .find_map(|pack| {
                let index = &self.indexes[pack];
                let entry = index.lookup(id)?;
                Some(Place {
                    pack,
                    offset: index.pack_offset_at_index(entry),
                })
            })?;
        *likely = place.pack;
        Some(place)
    }

    /// `placed` (sorted by place) split into `threads` parts of about equal size, keeping each
    /// delta family whole. Each part stays sorted by place.
    fn by_family(&self, placed: Vec<(Place, usize)>, threads: usize) -> Vec<Vec<(Place, usize)>> {
        let roots = self.delta_roots(&placed);
        let mut by_root: Vec<(Place, Place, usize)> = placed
            .into_iter()
            .zip(roots)
            .map(|((place, position), root)| (root, place, position))
            .collect();
        by_root.sort_unstable();
        let target = by_root.len().div_ceil(threads).max(1);
        let mut parts: Vec<Vec<(Place, usize)>> = vec![Vec::new()];
        let mut previous_root = None;
        for (root, place, position) in by_root {
            let current = parts.last_mut().expect("at least one part");
            let new_family = previous_root != Some(root);
            if new_family && current.len() >= target && parts.len() < threads {
                parts.push(Vec::new());
            }
            parts
                .last_mut()
                .expect("at least one part")
                .push((place, position));
            previous_root = Some(root);
        }
        for part in &mut parts {
            part.sort_unstable();
        }
        parts
    }

    /// For each of `placed` (sorted by place), the base object its delta chain ends in: itself
    /// when it is no delta, or when a header cannot be read. Entry headers only, no inflation.
    /// An ofs-delta's base lies earlier in its pack, so when the base is one of `placed` its
    /// root is already known.
    fn delta_roots(&self, placed: &[(Place, usize)]) -> Vec<Place> {
        let mut roots: Vec<Place> = Vec::with_capacity(placed.len());
        for (index, &(place, _)) in placed.iter().enumerate() {
            let file = self.data[place.pack].as_ref();
            let mut cursor = place;
            let mut depth = 0;
            let root = loop {
                let Some(base) = file.and_then(|file| ofs_delta_base(file, cursor)) else {
                    break cursor;
                };
                if let Ok(known) = placed[..index].binary_search_by_key(&base, |&(p, _)| p) {
                    break roots[known];
                }
                depth += 1;
                if depth > MAX_CHAIN {
                    break base;
                }
                cursor = base;
            };
            roots.push(root);
        }
        roots
    }
}

/// The base of the entry at `place` when it is an ofs-delta.
fn ofs_delta_base(file: &gix::odb::pack::data::File, place: Place) -> Option<Place> {
    let entry = file.entry(place.offset).ok()?;
    match entry.header {
        gix::odb::pack::data::entry::Header::OfsDelta { base_distance } => Some(Place {
            pack: place.pack,
            offset: entry.checked_base_pack_offset(base_distance)?,
        }),
        _ => None,
    }
}

/// Longer chains than git ever writes (its default depth is 50) mean a damaged pack: stop.
const MAX_CHAIN: usize = 4_096;
