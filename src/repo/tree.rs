//! The file seam of the core: a read-only tree of files, either a directory on disk
//! ([`DirTree`], the core's only I/O) or a git tree at a commit (in `crate::git`). Paths are
//! `/`-separated and relative to the repository root.

use std::io;
use std::path::{Path, PathBuf};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The entry's name (not its path).
    pub name: String,
    /// True for a directory.
    pub is_dir: bool,
}

/// A read-only tree of files.
pub trait Tree {
    /// The entries of directory `dir` (`""` for the root), sorted by name; empty when the
    /// directory does not exist.
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>>;

    /// The bytes of file `path`; `ErrorKind::NotFound` when it does not exist.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;

    /// True when `path` is a file.
    fn is_file(&self, path: &str) -> bool;

    /// A content address of directory `dir` (`""`: the root), when the tree has one: two
    /// directories with the same id hold the same files (git tree ids). `None` when the tree
    /// cannot say (a directory on disk), or there is no such directory.
    fn dir_id(&self, _dir: &str) -> Option<String> {
        None
    }
}

/// A tree on disk, rooted at a directory. Files larger than the YAML limit are refused before
/// they are read.
#[derive(Debug, Clone)]
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    /// A tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }
}

impl Tree for DirTree {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        let read = match std::fs::read_dir(self.full(dir)) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for entry in read {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // Follow symlinks as the file system does; skip what cannot be stat'ed.
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            entries.push(Entry {
                name,
                is_dir: meta.is_dir(),
            });
        }
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let full = self.full(path);
        let size = std::fs::metadata(&full)?.len();
        if size > crate::yaml::limits::MAX_BYTES as u64 {
            let too_large = crate::yaml::Error::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit: crate::yaml::limits::MAX_BYTES,
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                too_large.to_string(),
            ));
        }
        std::fs::read(full)
    }

    fn is_file(&self, path: &str) -> bool {
        self.full(path).is_file()
    }
}

/// A tree held in memory, for tests and for building a tree from git blobs.
#[derive(Debug, Clone, Default)]
pub struct MemTree {
    files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl MemTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: &str, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(path.to_string(), bytes.into());
        self
    }
}

impl Tree for MemTree {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut entries: Vec<Entry> = Vec::new();
        for path in self.files.keys().filter(|p| p.starts_with(&prefix)) {
            let rest = &path[prefix.len()..];
            let entry = match rest.split_once('/') {
                Some((name, _)) => Entry {
                    name: name.to_string(),
                    is_dir: true,
                },
                None => Entry {
                    name: rest.to_string(),
                    is_dir: false,
                },
            };
            if entries.last() != Some(&entry) {
                entries.push(entry);
            }
        }
        entries.sort();
        entries.dedup();
        Ok(entries)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_string()))
    }

    fn is_file(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_tree_lists_files_and_directories() {
        let mut tree = MemTree::new();
        tree.insert("a/b/c.yaml", "x")
            .insert("a/d.yaml", "y")
            .insert("e.yaml", "z");
        let names = |dir| {
            tree.list(dir)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.is_dir))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(""),
            [("a".to_string(), true), ("e.yaml".to_string(), false)]
        );
        assert_eq!(
            names("a"),
            [("b".to_string(), true), ("d.yaml".to_string(), false)]
        );
        assert!(names("nope").is_empty());
        assert_eq!(tree.read("a/d.yaml").unwrap(), b"y");
    }

    #[test]
    fn dir_tree_reads_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("env/svc")).unwrap();
        std::fs::write(dir.path().join("env/svc/values.yaml"), "a: 1").unwrap();
        let tree = DirTree::new(dir.path());
        assert_eq!(
            tree.list("env").unwrap(),
            vec![Entry {
                name: "svc".into(),
                is_dir: true
            }]
        );
        assert!(tree.is_file("env/svc/values.yaml"));
        assert!(tree.list("missing").unwrap().is_empty());
        assert_eq!(
            tree.read("missing").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
