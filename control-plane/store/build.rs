//! Build script: sets `cfg(fdb_cluster)` when `FDB_CLUSTER_FILE` names a FoundationDB cluster at
//! build time, so that the FoundationDB conformance tests (cargo feature `fdb`) are compiled only
//! when there is a cluster to run them against.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fdb_cluster)");
    println!("cargo::rerun-if-env-changed=FDB_CLUSTER_FILE");
    if std::env::var_os("FDB_CLUSTER_FILE").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=fdb_cluster");
    }
}
