//! ConfigMap, Secret and emptyDir volumes on disk, laid out as the kubelet's AtomicWriter does
//! (pkg/volume/util/atomic_writer.go): the files live in a timestamped directory, `..data` is a
//! symlink to it and each key is a symlink through `..data`, so an update is one rename. The
//! kubelet refreshes ConfigMap and Secret volumes on its sync period, never at once; a `subPath`
//! mount is a copy made when the container starts and is never updated (both documented in
//! "Configure a Pod to Use a ConfigMap": "mounted ConfigMaps are updated automatically" after
//! "the kubelet sync period + cache propagation delay"; "A container using a ConfigMap as a
//! subPath volume will not receive ConfigMap updates").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Volume};
use kube::Api;
use kube::Client;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The kubelet's wording: `MountVolume.SetUp failed for volume "x" : configmap "y" not found`.
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {kind} \"{name}\" not found")]
    NotFound { volume: String, kind: &'static str, name: String },
    #[error("writing volume {0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The files a volume holds now (`None` for an emptyDir, whose content the container owns).
pub async fn contents(client: &Client, ns: &str, v: &Volume) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    if let Some(cm) = &v.config_map {
        let found = Api::<ConfigMap>::namespaced(client.clone(), ns).get_opt(&cm.name).await?;
        let Some(found) = found else {
            if cm.optional == Some(true) {
                return Ok(Some(BTreeMap::new()));
            }
            return Err(VolumeError::NotFound { volume: v.name.clone(), kind: "configmap", name: cm.name.clone() });
        };
        let mut files: BTreeMap<String, Vec<u8>> = found.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        files.extend(found.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        return Ok(Some(project(files, cm.items.as_deref())));
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let found = Api::<Secret>::namespaced(client.clone(), ns).get_opt(&name).await?;
        let Some(found) = found else {
            if s.optional == Some(true) {
                return Ok(Some(BTreeMap::new()));
            }
            return Err(VolumeError::NotFound { volume: v.name.clone(), kind: "secret", name });
        };
        let files: BTreeMap<String, Vec<u8>> = found.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        return Ok(Some(project(files, s.items.as_deref())));
    }
    Ok(None)
}

/// `items` selects keys and renames them to paths.
fn project(files: BTreeMap<String, Vec<u8>>, items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>) -> BTreeMap<String, Vec<u8>> {
    match items {
        None => files,
        Some(items) => items.iter().filter_map(|i| files.get(&i.key).map(|v| (i.path.clone(), v.clone()))).collect(),
    }
}

/// Writes `files` into `dir` atomically (new timestamped directory, then swap `..data`).
/// Returns whether anything changed.
pub fn write_atomic(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<bool, VolumeError> {
    let io = |e| VolumeError::Io(dir.display().to_string(), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let data = dir.join("..data");
    let current: BTreeMap<String, Vec<u8>> =
        files.keys().filter_map(|k| std::fs::read(data.join(k)).ok().map(|v| (k.clone(), v))).collect();
    if data.exists() && &current == files {
        return Ok(false);
    }
    let stamp = format!("..{}", k8s_openapi::jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f"));
    let fresh = dir.join(&stamp);
    std::fs::create_dir_all(&fresh).map_err(io)?;
    for (k, v) in files {
        let path = fresh.join(k);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, v).map_err(io)?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(io)?;
    let old_target = std::fs::read_link(&data).ok();
    std::fs::rename(&tmp, &data).map_err(io)?;
    for k in files.keys() {
        let link = dir.join(k.split('/').next().unwrap_or(k));
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(PathBuf::from("..data").join(k.split('/').next().unwrap_or(k)), &link).map_err(io)?;
        }
    }
    if let Some(old) = old_target {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_swap_the_data_link_and_keep_key_links_stable() {
        let dir = tempfile::tempdir().expect("tmp");
        let v1 = BTreeMap::from([("settings.toml".to_string(), b"a = 1".to_vec())]);
        assert!(write_atomic(dir.path(), &v1).expect("write"));
        assert_eq!(std::fs::read(dir.path().join("settings.toml")).expect("read"), b"a = 1");
        assert!(!write_atomic(dir.path(), &v1).expect("same"), "unchanged content is not rewritten");
        let v2 = BTreeMap::from([("settings.toml".to_string(), b"a = 2".to_vec())]);
        assert!(write_atomic(dir.path(), &v2).expect("update"));
        assert_eq!(std::fs::read(dir.path().join("settings.toml")).expect("read"), b"a = 2");
        assert!(std::fs::symlink_metadata(dir.path().join("settings.toml")).expect("link").file_type().is_symlink());
    }
}
