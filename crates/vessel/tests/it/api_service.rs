//! `vessel api-service` through a gRPC client generated from the same vendored proto as
//! rkt's clients: running, exited and prepared pods listed and inspected (with filters,
//! one matching nothing), images, events followed while pods start and stop, logs read
//! and followed, and clients that go away mid-stream.

use std::time::Duration;

use api::v1alpha::{
    EventFilter, EventType, GetInfoRequest, GetLogsRequest, ImageFilter, InspectImageRequest,
    InspectPodRequest, ListImagesRequest, ListPodsRequest, ListenEventsRequest, PodFilter,
    PodState,
};

use crate::common::services::ApiService;
use crate::podkit::PodEnv;

fn service(p: &PodEnv) -> ApiService {
    ApiService::start(p.v.dir(), p.v.path("api-service.log"))
}

fn detached(p: &PodEnv, net: &str, script: &str) -> String {
    p.run(&[
        "run", "--detach", net, &p.image, "--exec", "/bin/sh", "--", "-c", script,
    ])
    .success()
    .stdout
    .trim()
    .to_string()
}

fn prepared(p: &PodEnv) -> String {
    p.run(&["prepare", &p.image, "--exec=/bin/true"])
        .success()
        .stdout
        .trim()
        .to_string()
}

fn exited(p: &PodEnv, script: &str) -> String {
    let saved = p.v.path(&crate::common::host::unique_name("uuid"));
    p.run(&[
        "run",
        &format!("--uuid-file-save={}", saved.display()),
        &p.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        script,
    ]);
    std::fs::read_to_string(&saved).unwrap().trim().to_string()
}

#[test]
fn pods_are_listed_and_inspected_in_every_state() {
    let p = PodEnv::new();
    let running = detached(
        &p,
        "--net=default",
        "trap 'exit 0' TERM; while true; do sleep 0.05; done",
    );
    p.run(&["status", "--wait-ready=10s", &running]).success();
    let done = exited(&p, "exit 3");
    let ready = prepared(&p);
    let svc = service(&p);
    let mut c = svc.client();
    let rt = &svc.rt;

    let info = rt
        .block_on(c.get_info(GetInfoRequest {}))
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.api_version, "1.0.0-alpha");
    assert_eq!(
        info.global_flags.unwrap().dir,
        p.v.dir().display().to_string()
    );

    let all = rt
        .block_on(c.list_pods(ListPodsRequest {
            filters: vec![],
            detail: true,
        }))
        .unwrap()
        .into_inner()
        .pods;
    let state_of = |id: &str| {
        let pod = all
            .iter()
            .find(|x| x.id == id)
            .unwrap_or_else(|| panic!("{id} not listed: {all:?}"));
        PodState::try_from(pod.state).unwrap()
    };
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(state_of(&running), PodState::Running);
    assert_eq!(state_of(&done), PodState::Exited);
    assert_eq!(state_of(&ready), PodState::Prepared);

    // Filters: ORed across filters, ANDed within one.
    let only = |filters: Vec<PodFilter>| {
        let mut ids: Vec<String> = rt
            .block_on(c.clone().list_pods(ListPodsRequest {
                filters,
                detail: false,
            }))
            .unwrap()
            .into_inner()
            .pods
            .into_iter()
            .map(|x| x.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        only(vec![PodFilter {
            states: vec![PodState::Running as i32],
            ..Default::default()
        }]),
        vec![running.clone()]
    );
    let mut two = vec![running.clone(), done.clone()];
    two.sort();
    assert_eq!(
        only(vec![
            PodFilter {
                ids: vec![running.clone()],
                ..Default::default()
            },
            PodFilter {
                states: vec![PodState::Exited as i32],
                ..Default::default()
            }
        ]),
        two
    );
    // A filter that matches nothing: an empty answer, not an error.
    assert_eq!(
        only(vec![PodFilter {
            ids: vec![running.clone()],
            states: vec![PodState::Exited as i32],
            ..Default::default()
        }]),
        Vec::<String>::new()
    );
    assert_eq!(
        only(vec![PodFilter {
            app_names: vec!["no-such-app".into()],
            ..Default::default()
        }]),
        Vec::<String>::new()
    );

    // Inspect: the running pod's pid, cgroup and app; the exited one's exit code.
    let pod = rt
        .block_on(c.inspect_pod(InspectPodRequest {
            id: running.clone(),
        }))
        .unwrap()
        .into_inner()
        .pod
        .unwrap();
    assert!(pod.pid > 0, "{pod:?}");
    assert!(pod.cgroup.contains(&running), "{pod:?}");
    // The network it joined, with its address (rkt's Network message).
    assert_eq!(pod.networks.len(), 1, "{pod:?}");
    assert_eq!(pod.networks[0].name, "default");
    assert!(pod.networks[0].ipv4.starts_with("172.16.28."), "{pod:?}");
    assert!(pod.networks[0].ipv6.is_empty(), "{pod:?}");
    assert!(!pod.manifest.is_empty());
    assert_eq!(pod.apps.len(), 1);
    assert_eq!(pod.apps[0].image.as_ref().unwrap().id, p.v.image_ids()[0]);
    let pod = rt
        .block_on(c.inspect_pod(InspectPodRequest { id: done.clone() }))
        .unwrap()
        .into_inner()
        .pod
        .unwrap();
    assert_eq!(pod.apps[0].exit_code, 3, "{pod:?}");
    let e = rt
        .block_on(c.inspect_pod(InspectPodRequest {
            id: "00000000-0000-4000-8000-000000000000".into(),
        }))
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    p.run(&["stop", &running]).success();
}

#[test]
fn images_are_listed_inspected_and_filtered() {
    let p = PodEnv::new();
    let id = p.v.image_ids()[0].clone();
    let svc = service(&p);
    let mut c = svc.client();
    let rt = &svc.rt;
    let list = |filters: Vec<ImageFilter>| {
        rt.block_on(c.clone().list_images(ListImagesRequest {
            filters,
            detail: false,
        }))
        .unwrap()
        .into_inner()
        .images
    };
    let all = list(vec![]);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].id, id);
    assert_eq!(all[0].name, "example.com/busybox");
    assert_eq!(all[0].version, "1");
    let named = list(vec![ImageFilter {
        full_names: vec!["example.com/busybox".into()],
        ..Default::default()
    }]);
    assert_eq!(named.len(), 1);
    let none = list(vec![ImageFilter {
        prefixes: vec!["example.org/".into()],
        ..Default::default()
    }]);
    assert!(none.is_empty(), "{none:?}");
    let image = rt
        .block_on(c.inspect_image(InspectImageRequest { id: id.clone() }))
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(image.id, id);
    let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    assert_eq!(manifest["name"], "example.com/busybox");
    let e = rt
        .block_on(c.inspect_image(InspectImageRequest {
            id: "not-an-id".into(),
        }))
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
}

#[test]
fn events_follow_pods_as_they_start_and_stop() {
    let p = PodEnv::new();
    let svc = service(&p);
    let mut c = svc.client();
    let rt = &svc.rt;
    let mut stream = rt
        .block_on(c.listen_events(ListenEventsRequest {
            filter: Some(EventFilter::default()),
        }))
        .unwrap()
        .into_inner();
    let uuid = exited(&p, "exit 0");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(&(EventType::PodExited, uuid.clone())) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let next = rt
            .block_on(async { tokio::time::timeout(left, stream.message()).await })
            .unwrap_or_else(|_| panic!("no pod exit among {seen:?}"))
            .unwrap()
            .expect("the stream stays open");
        for e in next.events {
            seen.push((EventType::try_from(e.r#type).unwrap(), e.id));
        }
    }
    let ours: Vec<EventType> = seen
        .iter()
        .filter(|(_, id)| *id == uuid)
        .map(|(t, _)| *t)
        .collect();
    assert!(ours.contains(&EventType::PodStarted), "{seen:?}");
    let started = ours
        .iter()
        .position(|t| *t == EventType::PodStarted)
        .unwrap();
    let exited_at = ours
        .iter()
        .position(|t| *t == EventType::PodExited)
        .unwrap();
    assert!(started < exited_at, "{seen:?}");
    // App events are read from the pod's state.json; for a pod this short they may come
    // after POD_EXITED (or, when its last write is missed, not at all): not asserted here.

    // A filter on another pod's ID sees nothing of this one.
    let mut quiet = rt
        .block_on(c.listen_events(ListenEventsRequest {
            filter: Some(EventFilter {
                ids: vec!["00000000-0000-4000-8000-000000000000".into()],
                ..Default::default()
            }),
        }))
        .unwrap()
        .into_inner();
    exited(&p, "exit 0");
    let r = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(1500), quiet.message()).await
    });
    assert!(
        r.is_err(),
        "an event passed a filter it does not match: {r:?}"
    );
}

#[test]
fn logs_are_read_and_followed_and_clients_may_leave_mid_stream() {
    let p = PodEnv::new();
    let done = exited(&p, "for i in 1 2 3 4 5; do echo line$i; done");
    let svc = service(&p);
    let mut c = svc.client();
    let rt = &svc.rt;
    let read = |req: GetLogsRequest| {
        let mut s = rt.block_on(c.clone().get_logs(req)).unwrap().into_inner();
        let mut lines = Vec::new();
        while let Some(m) = rt.block_on(s.message()).unwrap() {
            lines.extend(m.lines);
        }
        lines
    };
    let all = read(GetLogsRequest {
        pod_id: done.clone(),
        ..Default::default()
    });
    assert_eq!(all, ["line1", "line2", "line3", "line4", "line5"]);
    let last = read(GetLogsRequest {
        pod_id: done.clone(),
        lines: 2,
        ..Default::default()
    });
    assert_eq!(last, ["line4", "line5"]);
    let e = rt
        .block_on(c.clone().get_logs(GetLogsRequest {
            pod_id: done.clone(),
            app_name: "nope".into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // since_time/until_time: seconds since the epoch, against when each line was read.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let later = read(GetLogsRequest {
        pod_id: done.clone(),
        since_time: now + 3600,
        ..Default::default()
    });
    assert!(later.is_empty(), "{later:?}");
    let window = read(GetLogsRequest {
        pod_id: done.clone(),
        since_time: now - 3600,
        until_time: now + 3600,
        ..Default::default()
    });
    assert_eq!(window, all);

    // Follow a running pod: lines arrive as they are written.
    let running = detached(
        &p,
        "--net=none",
        "echo first; i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done",
    );
    let mut s = rt
        .block_on(c.get_logs(GetLogsRequest {
            pod_id: running.clone(),
            follow: true,
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while !got.iter().any(|l: &String| l == "tick3") {
        let m = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(20), s.message()).await })
            .unwrap_or_else(|_| panic!("no tick3 in {got:?}"))
            .unwrap()
            .expect("the stream follows a running pod");
        got.extend(m.lines);
    }
    assert_eq!(got[0], "first", "{got:?}");
    // Clients go away mid-stream: a log stream and an event stream dropped unread.
    drop(s);
    let events = rt
        .block_on(c.listen_events(ListenEventsRequest { filter: None }))
        .unwrap()
        .into_inner();
    drop(events);
    p.run(&["stop", &running]).success();
    std::thread::sleep(Duration::from_millis(300));
    // The service goes on answering.
    let pods = rt
        .block_on(c.list_pods(ListPodsRequest::default()))
        .unwrap()
        .into_inner()
        .pods;
    assert_eq!(pods.len(), 2);
    let mut svc = svc;
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "{}",
        svc.log_text()
    );
}
