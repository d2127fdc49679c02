//! A serial terminal on a pseudo-terminal pair (openpty): the test writes lines on the master side, the agent reads
//! the slave side as if it were `/dev/ttyUSB0`. The slave is reached through a symbolic link, so an unplug (closing the pair)
//! and a replug (a new pair behind the same link) look to the reader like an adapter disappearing and returning.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// One plugged-in terminal.
pub struct PtyTerminal {
    master: File,
    /// Held so the pair stays usable before the reader opens it; closed on unplug.
    _slave: OwnedFd,
    pub slave_path: PathBuf,
    link: PathBuf,
}

impl PtyTerminal {
    /// Opens a new pair (raw mode, so bytes pass unchanged) and points `link` at its slave.
    ///
    /// # Errors
    /// When the pair cannot be opened or the link written.
    pub fn plug(link: &Path) -> anyhow::Result<Self> {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors into the given integers; the name, termios and winsize arguments may
        // be null.
        let rc =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        if rc != 0 {
            bail!("openpty failed: {}", std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just returned by openpty and are owned by nobody else. They are marked
        // close-on-exec so that processes the test starts (the agent) do not keep the pair open after an unplug.
        let (master, slave) = unsafe {
            libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(slave, libc::F_SETFD, libc::FD_CLOEXEC);
            (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
        };
        // The slave is reached through this process's descriptor rather than its /dev/pts name: in containers with
        // stacked devpts mounts the name another process resolves can be another test's terminal.
        let slave_path = PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), slave.as_raw_fd()));
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link).with_context(|| format!("linking {}", link.display()))?;
        let terminal = Self { master, _slave: slave, slave_path, link: link.to_owned() };
        terminal.make_raw()?;
        Ok(terminal)
    }

    fn make_raw(&self) -> anyhow::Result<()> {
        let fd = self._slave.as_raw_fd();
        // SAFETY: termios is plain data filled by tcgetattr on a valid descriptor before use.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut termios) != 0 {
                bail!("tcgetattr: {}", std::io::Error::last_os_error());
            }
            libc::cfmakeraw(&mut termios);
            if libc::tcsetattr(fd, libc::TCSANOW, &termios) != 0 {
                bail!("tcsetattr: {}", std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Writes `line` followed by `end` ("\r\n", "\n" or "\r").
    ///
    /// # Errors
    /// When the write fails.
    pub fn send(&mut self, line: &str, end: &str) -> std::io::Result<()> {
        self.master.write_all(format!("{line}{end}").as_bytes())?;
        self.master.flush()
    }

    /// Writes raw bytes (a line cut in two, noise).
    ///
    /// # Errors
    /// When the write fails.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.master.write_all(bytes)
    }

    /// Another handle on the master side (to bridge two pairs into a null-modem cable).
    ///
    /// # Errors
    /// When the descriptor cannot be duplicated.
    pub fn master(&self) -> std::io::Result<File> {
        self.master.try_clone()
    }

    /// Closes the pair and removes the link: the reader's next read fails and reopening finds no port, as when a
    /// USB adapter is pulled.
    pub fn unplug(self) {
        let _ = std::fs::remove_file(&self.link);
        drop(self);
    }
}

/// Two pairs whose master sides are joined by copying threads: what one side's slave writes, the other's reads. The
/// agent opens one slave, a simulated device the other, as over a null-modem cable.
pub struct NullModem {
    pub a: PtyTerminal,
    pub b: PtyTerminal,
}

impl NullModem {
    /// Plugs two pairs behind `link_a` and `link_b` and starts copying between them.
    ///
    /// # Errors
    /// When a pair cannot be opened.
    pub fn plug(link_a: &Path, link_b: &Path) -> anyhow::Result<Self> {
        let a = PtyTerminal::plug(link_a)?;
        let b = PtyTerminal::plug(link_b)?;
        for (mut from, mut to) in [(a.master()?, b.master()?), (b.master()?, a.master()?)] {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
            });
        }
        Ok(Self { a, b })
    }
}
