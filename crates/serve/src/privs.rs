//! Dropping privileges once the capture is open (tcpdump's `-Z user` semantics).
//!
//! Call [`drop_privileges`] from the main thread **before any other thread exists**: the
//! kernel's capability sets are per thread, and only the uid/gid changes are broadcast to
//! every thread by the C library.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};

/// A user to switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Looks a user up in the password database.
pub fn lookup_user(name: &str) -> Result<User, String> {
    let cname = CString::new(name).map_err(|_| format!("bad user name {name:?}"))?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: `pwd` is plain old data that getpwnam_r fills; `buf` outlives the call and
        // its true length is passed; `result` is a valid out-pointer. The strings `pwd`
        // points to live in `buf`, which is not touched before they are read below.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "cannot look up user {name:?}: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if result.is_null() {
            return Err(format!("no such user {name:?}"));
        }
        // SAFETY: on success `pw_name` is a NUL-terminated string inside `buf`.
        let n = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Ok(User {
            name: n,
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        });
    }
}

/// The kernel's capability header and data (`linux/capability.h`, version 3: two words).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn last_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Switches to `user` (supplementary groups, gid, uid: all of real, effective and saved)
/// when given, then clears every capability (effective, permitted, inheritable, ambient)
/// and sets no-new-privileges. Checks the result in `/proc/self/status`.
pub fn drop_privileges(user: Option<&User>) -> Result<(), String> {
    if let Some(u) = user {
        let cname = CString::new(u.name.as_str()).map_err(|_| "bad user name".to_string())?;
        // SAFETY: plain system calls with valid arguments (a NUL-terminated name).
        unsafe {
            if libc::initgroups(cname.as_ptr(), u.gid) != 0 {
                return Err(last_error("initgroups"));
            }
            if libc::setresgid(u.gid, u.gid, u.gid) != 0 {
                return Err(last_error("setresgid"));
            }
            if libc::setresuid(u.uid, u.uid, u.uid) != 0 {
                return Err(last_error("setresuid"));
            }
        }
    }
    // SAFETY: prctl with integer arguments only; EINVAL on kernels without ambient
    // capabilities is harmless (there is nothing to clear).
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
    let hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads a version-3 header and two data words, which is what is passed;
    // both outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(last_error("capset"));
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } != 0
    {
        return Err(last_error("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    let caps = capabilities()?;
    if caps.effective != 0 || caps.permitted != 0 || caps.ambient != 0 {
        return Err(format!("capabilities left after dropping them: {caps:?}"));
    }
    if let Some(u) = user {
        if caps.uid != u.uid {
            return Err(format!(
                "still uid {} after switching to {}",
                caps.uid, u.uid
            ));
        }
    }
    Ok(())
}

/// The calling thread's capability sets and real uid, from `/proc/thread-self/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// CapEff.
    pub effective: u64,
    /// CapPrm.
    pub permitted: u64,
    /// CapAmb.
    pub ambient: u64,
    /// Real uid.
    pub uid: u32,
}

/// Reads [`Caps`].
pub fn capabilities() -> Result<Caps, String> {
    let s = std::fs::read_to_string("/proc/thread-self/status")
        .or_else(|_| std::fs::read_to_string("/proc/self/status"))
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    Ok(parse_status(&s))
}

fn parse_status(s: &str) -> Caps {
    let mut c = Caps::default();
    for l in s.lines() {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        let hex = || u64::from_str_radix(v, 16).unwrap_or(u64::MAX);
        match k {
            "CapEff" => c.effective = hex(),
            "CapPrm" => c.permitted = hex(),
            "CapAmb" => c.ambient = hex(),
            "Uid" => {
                c.uid = v
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(u32::MAX)
            }
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing() {
        let s = "Name:\tzkscope\nUid:\t65534\t65534\t65534\t65534\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\nCapAmb:\t0000000000000000\n";
        let c = parse_status(s);
        assert_eq!(c.uid, 65534);
        assert_eq!(c.permitted, 0x3000);
        assert_eq!(c.effective, 0x3000);
        assert_eq!(c.ambient, 0);
    }

    #[test]
    fn users_are_looked_up() {
        let root = lookup_user("root").expect("root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(lookup_user("no-such-user-zkscope").is_err());
        assert!(lookup_user("a\0b").is_err());
    }
}
