//! What a node knows of each payer: the best voucher it holds, what it has
//! charged against it, what is held by requests in flight, and the payer's
//! channel on chain. Kept in memory and in an append-only log
//! (`payments.log`, JSON lines): a voucher is written and synced when it
//! arrives (it is the node's claim on the escrow: nothing earned may be
//! lost), a charge is appended as it is made (the page cache keeps it across
//! a crash of the process), redemptions after they land. The log is read
//! back and rewritten compactly when the node starts.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};

/// A voucher as the node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Up to what the payer authorized (cumulative).
    pub cumulative: U256,
    /// Until when it may be redeemed.
    pub expiry: u64,
    /// The payer's signature.
    pub signature: Bytes,
}

/// One payer's standing at this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// The highest voucher received.
    pub voucher: Option<Held>,
    /// Everything charged so far (what the node redeems).
    pub charged: U256,
    /// Reserved by requests still running.
    pub held: U256,
    /// What the escrow has paid out on this channel.
    pub redeemed: U256,
    /// What the payer has deposited to this node (`None`: not read yet).
    pub deposited: Option<U256>,
    /// A withdrawal the payer announced, due then (0: none).
    pub withdrawable_at: u64,
    /// When the channel was last read from the chain.
    pub read_at: Option<std::time::Instant>,
}

impl Account {
    /// What may still be charged: the voucher's cap and the deposit, less
    /// what is charged and held.
    pub fn available(&self) -> U256 {
        let cap = self.voucher.as_ref().map_or(U256::ZERO, |v| v.cumulative);
        cap.min(self.deposited.unwrap_or(U256::ZERO))
            .saturating_sub(self.charged + self.held)
    }

    /// Charged but not yet collected.
    pub fn unredeemed(&self) -> U256 {
        self.charged.saturating_sub(self.redeemed)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Record {
    Voucher { payer: Address, voucher: Held },
    Charged { payer: Address, total: U256 },
    Redeemed { payer: Address, total: U256 },
}

/// The accounts and their log.
pub struct Ledger {
    pub(crate) accounts: HashMap<Address, Account>,
    log: Option<File>,
    path: Option<PathBuf>,
}

impl Ledger {
    /// A ledger kept in memory only.
    pub fn in_memory() -> Self {
        Ledger {
            accounts: HashMap::new(),
            log: None,
            path: None,
        }
    }

    /// Opens the log at `path`: replays it, then rewrites it compactly.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut accounts: HashMap<Address, Account> = HashMap::new();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                // a line cut by a crash is the last one, and ignored
                let Ok(r) = serde_json::from_str::<Record>(&line) else {
                    continue;
                };
                match r {
                    Record::Voucher { payer, voucher } => {
                        let a = accounts.entry(payer).or_default();
                        if a.voucher
                            .as_ref()
                            .is_none_or(|v| voucher.cumulative >= v.cumulative)
                        {
                            a.voucher = Some(voucher);
                        }
                    }
                    Record::Charged { payer, total } => {
                        let a = accounts.entry(payer).or_default();
                        a.charged = a.charged.max(total);
                    }
                    Record::Redeemed { payer, total } => {
                        let a = accounts.entry(payer).or_default();
                        a.redeemed = a.redeemed.max(total);
                    }
                }
            }
        }
        // what the escrow paid was charged, whatever the log kept
        for a in accounts.values_mut() {
            a.charged = a.charged.max(a.redeemed);
        }
        let tmp = path.with_extension("log.tmp");
        {
            let mut f = File::create(&tmp)?;
            for (payer, a) in &accounts {
                for r in Self::records(*payer, a) {
                    serde_json::to_writer(&mut f, &r)?;
                    f.write_all(b"\n")?;
                }
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let log = OpenOptions::new().append(true).open(path)?;
        Ok(Ledger {
            accounts,
            log: Some(log),
            path: Some(path.to_path_buf()),
        })
    }

    fn records(payer: Address, a: &Account) -> Vec<Record> {
        let mut out = vec![];
        if let Some(v) = &a.voucher {
            out.push(Record::Voucher {
                payer,
                voucher: v.clone(),
            });
        }
        out.push(Record::Charged {
            payer,
            total: a.charged,
        });
        out.push(Record::Redeemed {
            payer,
            total: a.redeemed,
        });
        out
    }

    /// Where the log is kept, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn append(&mut self, r: &Record, sync: bool) -> std::io::Result<()> {
        let Some(f) = &mut self.log else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(r)?;
        line.push(b'\n');
        f.write_all(&line)?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }

    /// The account of `payer`.
    pub fn account(&mut self, payer: Address) -> &mut Account {
        self.accounts.entry(payer).or_default()
    }

    /// Keeps `voucher` as `payer`'s, durably.
    pub fn keep_voucher(&mut self, payer: Address, voucher: Held) -> std::io::Result<()> {
        self.append(
            &Record::Voucher {
                payer,
                voucher: voucher.clone(),
            },
            true,
        )?;
        self.account(payer).voucher = Some(voucher);
        Ok(())
    }

    /// Charges `amount` to `payer` (out of what it held).
    pub fn charge(&mut self, payer: Address, held: U256, amount: U256) -> std::io::Result<U256> {
        let a = self.account(payer);
        a.held = a.held.saturating_sub(held);
        a.charged += amount;
        let total = a.charged;
        if !amount.is_zero() {
            self.append(&Record::Charged { payer, total }, false)?;
        }
        Ok(total)
    }

    /// Records what the escrow has paid on `payer`'s channel.
    pub fn redeemed(&mut self, payer: Address, total: U256) -> std::io::Result<()> {
        let a = self.account(payer);
        if total <= a.redeemed {
            return Ok(());
        }
        a.redeemed = total;
        // a node that lost its log charges on from what the chain paid it
        a.charged = a.charged.max(total);
        self.append(&Record::Redeemed { payer, total }, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(c: u64) -> Held {
        Held {
            cumulative: U256::from(c),
            expiry: 1_000,
            signature: Bytes::from(vec![1; 65]),
        }
    }

    #[test]
    fn vouchers_charges_and_redemptions_survive_a_restart_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payments.log");
        let (alice, bob) = (Address::repeat_byte(1), Address::repeat_byte(2));
        {
            let mut l = Ledger::open(&path).unwrap();
            l.keep_voucher(alice, held(100)).unwrap();
            l.account(alice).held = U256::from(10u64);
            assert_eq!(
                l.charge(alice, U256::from(10u64), U256::from(7u64))
                    .unwrap(),
                U256::from(7u64)
            );
            l.charge(alice, U256::ZERO, U256::from(5u64)).unwrap();
            l.keep_voucher(bob, held(50)).unwrap();
            l.redeemed(bob, U256::from(20u64)).unwrap();
        }
        // a crash mid-line
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"charged\":{\"payer\":")
            .unwrap();
        let mut l = Ledger::open(&path).unwrap();
        let a = l.account(alice).clone();
        assert_eq!(
            (a.voucher, a.charged, a.held),
            (Some(held(100)), U256::from(12u64), U256::ZERO)
        );
        let b = l.account(bob).clone();
        assert_eq!(
            (b.charged, b.redeemed),
            (U256::from(20u64), U256::from(20u64))
        );
        // rewritten compactly: three lines per payer
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 6);
    }

    #[test]
    fn what_is_available_is_the_lesser_of_voucher_and_deposit_less_charges_and_holds() {
        let mut a = Account {
            voucher: Some(held(100)),
            deposited: Some(U256::from(80u64)),
            charged: U256::from(30u64),
            held: U256::from(20u64),
            ..Default::default()
        };
        assert_eq!(a.available(), U256::from(30u64));
        a.deposited = None;
        assert_eq!(a.available(), U256::ZERO, "an unread deposit backs nothing");
    }
}
