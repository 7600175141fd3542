//! The mesh file: what a running `switchyard up` publishes (`<data_dir>/mesh.json`) so that
//! other commands find its agents and gateway, and the lock that keeps one `up` per data
//! directory.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use switchyard::registry::AgentConfig;

use crate::error::CliError;

/// Name of the mesh file inside the data directory.
pub const MESH_FILE: &str = "mesh.json";
const LOCK_FILE: &str = "up.lock";

/// A running mesh, as published by `switchyard up`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MeshFile {
    /// Process id of `switchyard up`.
    pub pid: u32,
    /// The gateway's base URL, when it runs.
    pub gateway: Option<String>,
    /// Every agent with its gRPC endpoint.
    pub agents: Vec<AgentConfig>,
    /// The CLI's mTLS material (mesh CA, `spiffe://<trust-domain>/cli` certificate and key);
    /// absent when the mesh runs in plain text (`[up] insecure = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<switchyard::tls::TlsFiles>,
    /// The gateway's mTLS material (`…/gateway`), for a gateway started on its own against
    /// this mesh (`SWITCHYARD_TLS_CA/_CERT/_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_tls: Option<switchyard::tls::TlsFiles>,
}

impl MeshFile {
    /// Path of the mesh file in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(MESH_FILE)
    }

    /// Reads the mesh file of `data_dir`; `None` when no mesh runs there.
    ///
    /// # Errors
    /// [`CliError::File`] when the file exists but cannot be read or parsed.
    pub fn read(data_dir: &Path) -> Result<Option<Self>, CliError> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CliError::File {
                    action: "parse",
                    path,
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CliError::File {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Writes the file atomically (temporary file, then rename).
    ///
    /// # Errors
    /// [`CliError::File`].
    pub fn write(&self, data_dir: &Path) -> Result<(), CliError> {
        let path = Self::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(self).expect("a mesh file always serializes");
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| CliError::File {
                action: "write",
                path,
                source,
            })
    }

    /// Removes the mesh file of `data_dir` (ignoring a missing file).
    pub fn remove(data_dir: &Path) {
        let _ = std::fs::remove_file(Self::path(data_dir));
    }
}

/// The exclusive lock of one `switchyard up` on a data directory; released on drop.
#[derive(Debug)]
pub struct UpLock {
    _file: File,
}

impl UpLock {
    /// Takes the lock of `data_dir`, creating the directory if needed.
    ///
    /// # Errors
    /// [`CliError::Serve`] when another `switchyard up` holds it; [`CliError::File`] when the
    /// directory or lock file cannot be created.
    pub fn acquire(data_dir: &Path) -> Result<Self, CliError> {
        std::fs::create_dir_all(data_dir).map_err(|source| CliError::File {
            action: "create",
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| CliError::File {
                action: "open",
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(CliError::Serve(format!(
                "another `switchyard up` is running with the data directory {}; stop it or \
                 use --data-dir",
                data_dir.display()
            ))),
            Err(std::fs::TryLockError::Error(source)) => Err(CliError::File {
                action: "lock",
                path,
                source,
            }),
        }
    }
}
