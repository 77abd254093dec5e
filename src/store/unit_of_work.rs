//! A unit of work: one transaction that, once committed, wakes the workers of the jobs
//! it queued (a mail queued by a portal reply goes out now, not at the worker's poll).

use std::ops::{Deref, DerefMut};

use super::jobs::{JobKind, Wake};
use super::{Result, Store, Tx};

pub struct UnitOfWork {
    tx: Tx,
    wake: Wake,
    queued: Vec<JobKind>,
}

impl Store {
    /// Begins a unit of work (a write transaction, see [`Store::begin`]) whose commit
    /// rings `wake` for the kinds of job it queued.
    pub async fn unit_of_work(&self, wake: &Wake) -> Result<UnitOfWork> {
        Ok(UnitOfWork {
            tx: self.begin().await?,
            wake: wake.clone(),
            queued: Vec::new(),
        })
    }
}

impl UnitOfWork {
    /// Notes that this unit queued jobs of `kind`: its worker is woken after the commit.
    pub fn queued(&mut self, kind: JobKind) {
        if !self.queued.contains(&kind) {
            self.queued.push(kind);
        }
    }

    /// Commits, then wakes the workers of the kinds queued (a worker woken earlier
    /// would look before the jobs are visible).
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        for kind in self.queued {
            self.wake.ring(kind);
        }
        Ok(())
    }
}

impl Deref for UnitOfWork {
    type Target = Tx;

    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl DerefMut for UnitOfWork {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}
