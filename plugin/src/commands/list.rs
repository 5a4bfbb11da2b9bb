//! `kubectl salve list [-A] [-w] [-o table|json|yaml]`.

use chrono::Utc;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::watcher;
use operator::crd::incident::Incident;

use super::print;
use crate::cli::{Format, ListArgs};
use crate::cluster::Cluster;
use crate::error::PluginError;
use crate::output::{age, objects, table::Table};
use crate::resources::{incident_op, incidents_dynamic};

pub async fn run(cluster: &Cluster, args: &ListArgs) -> Result<i32, PluginError> {
    let api = incidents_dynamic(cluster, args.all_namespaces);
    let ns = (!args.all_namespaces).then_some(cluster.namespace.as_str());
    if args.watch {
        return watch(cluster, api, args, ns).await;
    }
    let list = api.list(&ListParams::default()).await.map_err(|e| cluster.error(e, incident_op("list", None, ns)))?;
    let mut items = list.items;
    items.sort_by_key(|o| (o.namespace(), o.name_any()));
    if args.output != Format::Table {
        print(&objects::render(&objects::list(&items), args.output)?);
        return Ok(0);
    }
    if items.is_empty() {
        match ns {
            Some(ns) => eprintln!("No incidents found in {ns} namespace."),
            None => eprintln!("No incidents found."),
        }
        return Ok(0);
    }
    let mut t = table(args.all_namespaces);
    for o in &items {
        t.row(row(o, args.all_namespaces));
    }
    print(&t.render());
    Ok(0)
}

/// kubectl get -w: the current list, then one line per change (a deleted incident's last state
/// is printed too), until interrupted.
async fn watch(cluster: &Cluster, api: kube::Api<DynamicObject>, args: &ListArgs, ns: Option<&str>) -> Result<i32, PluginError> {
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut initial: Vec<DynamicObject> = Vec::new();
    let mut widths: Option<Vec<usize>> = None;
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| match e {
            watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) => cluster.error(e, incident_op("watch", None, ns)),
            other => PluginError::Watch(other.to_string()),
        })?;
        let changed = match event {
            watcher::Event::Init => {
                initial.clear();
                continue;
            }
            watcher::Event::InitApply(o) => {
                initial.push(o);
                continue;
            }
            watcher::Event::InitDone => std::mem::take(&mut initial),
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => vec![o],
        };
        if args.output != Format::Table {
            for o in &changed {
                print(&objects::render(o, args.output)?);
            }
            continue;
        }
        let mut t = table(args.all_namespaces);
        for o in &changed {
            t.row(row(o, args.all_namespaces));
        }
        let w = widths.get_or_insert_with(|| {
            let w: Vec<usize> = t.widths().into_iter().map(|w| w.max(12)).collect();
            print(&t.render_header(&w));
            w
        });
        print(&t.render_rows(w));
    }
    Ok(0)
}

fn table(all_namespaces: bool) -> Table {
    let mut headers = vec!["NAME", "SERVICE", "SEVERITY", "PHASE", "ROOT CAUSE", "ACTION", "AGE"];
    if all_namespaces {
        headers.insert(0, "NAMESPACE");
    }
    Table::new(headers)
}

fn row(o: &DynamicObject, all_namespaces: bool) -> Vec<String> {
    let created = o.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string());
    let age = age::since(created.as_deref(), Utc::now());
    let mut cells = match serde_json::to_value(o).and_then(serde_json::from_value::<Incident>) {
        Ok(i) => {
            let status = i.status.unwrap_or_default();
            let diagnosis = status.diagnosis.as_ref();
            vec![
                o.name_any(),
                i.spec.service,
                format!("{:?}", i.spec.severity),
                status.phase.as_str().to_string(),
                diagnosis.and_then(|d| d.root_cause_category).map(|c| c.as_str().to_string()).unwrap_or_default(),
                diagnosis.and_then(|d| d.proposed_action.as_ref()).map(|a| a.describe()).unwrap_or_default(),
                age,
            ]
        }
        Err(e) => vec![o.name_any(), format!("<invalid: {e}>"), String::new(), String::new(), String::new(), String::new(), age],
    };
    if all_namespaces {
        cells.insert(0, o.namespace().unwrap_or_default());
    }
    cells
}
