//! The process groups of the playbooks running now, so that a signal which stops this process
//! stops them too (see [`crate::interrupt`]): each playbook leads a group of its own, which a
//! terminal's Ctrl-C does not reach.

use std::collections::BTreeSet;
use std::sync::Mutex;

static GROUPS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Remembers the group led by `leader` while the returned guard lives.
pub fn track_group(leader: u32) -> TrackedGroup {
    groups().insert(leader);
    TrackedGroup(leader)
}

/// Forgets the group when the playbook is done.
pub struct TrackedGroup(u32);

impl Drop for TrackedGroup {
    fn drop(&mut self) {
        groups().remove(&self.0);
    }
}

/// Kills every tracked group.
pub fn kill_all() {
    for leader in groups().iter() {
        if let Some(pid) = rustix::process::Pid::from_raw(*leader as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

fn groups() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
