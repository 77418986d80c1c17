//! The `PublicAPI` service: each call reads the pod directories or the store on a
//! blocking thread; `ListenEvents` and `GetLogs` stream until the client goes (a send
//! that fails ends the stream's task) or, for logs, the pod ends.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::logs::PodLogs;
use crate::v1alpha::public_api_server::PublicApi;
use crate::v1alpha::*;

/// What `GetInfo` reports about how the service was started.
#[derive(Clone, Default)]
pub struct Flags {
    pub dir: String,
    pub system_config_dir: String,
    pub local_config_dir: String,
    pub user_config_dir: String,
    pub insecure_flags: String,
    pub trust_keys_from_https: bool,
}

pub struct Service {
    pub vessel_dir: PathBuf,
    pub version: String,
    pub flags: Flags,
    pub events: broadcast::Sender<Event>,
    pub pods: std::sync::Arc<crate::podcache::PodCache>,
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

#[tonic::async_trait]
impl PublicApi for Service {
    async fn get_info(
        &self,
        _: Request<GetInfoRequest>,
    ) -> Result<Response<GetInfoResponse>, Status> {
        let f = &self.flags;
        Ok(Response::new(GetInfoResponse {
            info: Some(Info {
                rkt_version: self.version.clone(),
                appc_version: "0.8.11".into(),
                api_version: crate::API_VERSION.into(),
                global_flags: Some(GlobalFlags {
                    dir: f.dir.clone(),
                    system_config_dir: f.system_config_dir.clone(),
                    local_config_dir: f.local_config_dir.clone(),
                    user_config_dir: f.user_config_dir.clone(),
                    insecure_flags: f.insecure_flags.clone(),
                    trust_keys_from_https: f.trust_keys_from_https,
                }),
            }),
        }))
    }

    async fn list_pods(
        &self,
        req: Request<ListPodsRequest>,
    ) -> Result<Response<ListPodsResponse>, Status> {
        let r = req.into_inner();
        let dir = self.vessel_dir.clone();
        let cache = self.pods.clone();
        let pods = blocking(move || {
            crate::pods::list(&dir, r.detail, &r.filters, &cache)
                .map_err(|e| Status::internal(format!("listing pods: {e}")))
        })
        .await?;
        Ok(Response::new(ListPodsResponse { pods }))
    }

    async fn inspect_pod(
        &self,
        req: Request<InspectPodRequest>,
    ) -> Result<Response<InspectPodResponse>, Status> {
        let id = req.into_inner().id;
        let dir = self.vessel_dir.clone();
        let cache = self.pods.clone();
        let pod = blocking(move || {
            crate::pods::inspect(&dir, &id, &cache)
                .ok_or_else(|| Status::not_found(format!("no pod {id:?}")))
        })
        .await?;
        Ok(Response::new(InspectPodResponse { pod: Some(pod) }))
    }

    async fn list_images(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let r = req.into_inner();
        let dir = self.vessel_dir.clone();
        let images = blocking(move || {
            let store = store::Store::open(&dir).map_err(|e| Status::internal(e.to_string()))?;
            crate::images::list(&store, r.detail, &r.filters)
                .map_err(|e| Status::internal(format!("listing images: {e}")))
        })
        .await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn inspect_image(
        &self,
        req: Request<InspectImageRequest>,
    ) -> Result<Response<InspectImageResponse>, Status> {
        let id = req.into_inner().id;
        let dir = self.vessel_dir.clone();
        let image = blocking(move || {
            let store = store::Store::open(&dir).map_err(|e| Status::internal(e.to_string()))?;
            let digest: store::Digest = id
                .parse()
                .map_err(|_| Status::invalid_argument(format!("{id:?} is not an image ID")))?;
            let rec = store
                .image_record(&digest)
                .map_err(|_| Status::not_found(format!("no image {id:?}")))?;
            Ok(crate::images::describe(&store, &rec, true))
        })
        .await?;
        Ok(Response::new(InspectImageResponse { image: Some(image) }))
    }

    type ListenEventsStream = Stream_<ListenEventsResponse>;

    async fn listen_events(
        &self,
        req: Request<ListenEventsRequest>,
    ) -> Result<Response<Self::ListenEventsStream>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let mut rx = self.events.subscribe();
        let (tx, out) = mpsc::channel(64);
        tokio::spawn(async move {
            let until = (filter.until_time > 0).then(|| {
                let now = chrono::Utc::now().timestamp();
                tokio::time::Instant::now()
                    + Duration::from_secs(filter.until_time.saturating_sub(now).max(0) as u64)
            });
            loop {
                let next = async {
                    match until {
                        Some(t) => tokio::time::timeout_at(t, rx.recv()).await.ok(),
                        None => Some(rx.recv().await),
                    }
                };
                tokio::select! {
                    r = next => match r {
                        // until_time reached: the stream ends.
                        None => break,
                        Some(Ok(e)) => {
                            if crate::events::wanted(&e, &filter)
                                && tx.send(Ok(ListenEventsResponse { events: vec![e] })).await.is_err()
                            {
                                break;
                            }
                        }
                        Some(Err(broadcast::error::RecvError::Lagged(n))) => {
                            let _ = tx.send(Err(Status::data_loss(format!("{n} events lost: reading too slowly")))).await;
                            break;
                        }
                        Some(Err(broadcast::error::RecvError::Closed)) => break,
                    },
                    // The client went away.
                    _ = tx.closed() => break,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }

    type GetLogsStream = Stream_<GetLogsResponse>;

    async fn get_logs(
        &self,
        req: Request<GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        let r = req.into_inner();
        if r.since_time < 0 || r.until_time < 0 {
            return Err(Status::invalid_argument(
                "since_time and until_time: seconds since the epoch, not negative",
            ));
        }
        let dir = self.vessel_dir.clone();
        let pod_id = r.pod_id.clone();
        let (pd, apps) = blocking(move || {
            let pods = pod::Pods::open(&dir).map_err(|e| Status::internal(e.to_string()))?;
            let pd = pods
                .find(&pod_id)
                .ok()
                .filter(|p| p.uuid == pod_id)
                .ok_or_else(|| Status::not_found(format!("no pod {pod_id:?}")))?;
            let rec = pod::state::PodState::load(&pd.path())
                .map_err(|e| Status::internal(e.to_string()))?;
            let apps: Vec<String> = rec.apps.iter().map(|a| a.name.clone()).collect();
            Ok((pd, apps))
        })
        .await?;
        let apps: Vec<String> = if r.app_name.is_empty() {
            apps
        } else if apps.contains(&r.app_name) {
            vec![r.app_name.clone()]
        } else {
            return Err(Status::not_found(format!(
                "no app {:?} in pod {}",
                r.app_name, r.pod_id
            )));
        };
        let paths = pd.paths();
        let req = crate::logs::Request {
            apps: apps.iter().map(|a| (a.clone(), paths.log(a))).collect(),
            lines: r.lines,
            since_time: r.since_time,
            until_time: r.until_time,
        };
        let (logs, first) = blocking(move || {
            PodLogs::open(req).map_err(|e| Status::internal(format!("reading the logs: {e}")))
        })
        .await?;
        let (tx, out) = mpsc::channel(16);
        let follow = r.follow;
        tokio::spawn(async move {
            if tx.send(Ok(GetLogsResponse { lines: first })).await.is_err() || !follow {
                return;
            }
            follow_logs(pd, logs, tx).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }
}

/// Sends lines as they are appended, woken by inotify, until the pod is no longer running
/// (then what is left is sent) or the client goes.
async fn follow_logs(
    mut pd: pod::PodDir,
    mut logs: PodLogs,
    tx: mpsc::Sender<Result<GetLogsResponse, Status>>,
) {
    use futures_util::StreamExt;
    let logs_dir = pd.paths().logs();
    let _ = std::fs::create_dir_all(&logs_dir);
    let inotify = inotify::Inotify::init();
    let mut stream = inotify.ok().and_then(|i| {
        i.watches()
            .add(
                &logs_dir,
                inotify::WatchMask::MODIFY | inotify::WatchMask::CREATE,
            )
            .ok()?;
        i.into_event_stream(vec![0u8; 4096]).ok()
    });
    // Only to notice the end of the pod (its lock is released): not a source of lines.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let ended = tokio::select! {
            _ = async { match stream.as_mut() { Some(s) => { s.next().await; } None => std::future::pending::<()>().await } } => false,
            _ = tick.tick() => pd.refresh().is_err() || !pd.is_locked(),
            _ = tx.closed() => return,
        };
        let mut lines = match logs.read_available() {
            Ok(l) => l,
            Err(e) => {
                let _ = tx
                    .send(Err(Status::internal(format!("reading the logs: {e}"))))
                    .await;
                return;
            }
        };
        if ended {
            lines.extend(logs.finish());
        }
        if !lines.is_empty() && tx.send(Ok(GetLogsResponse { lines })).await.is_err() {
            return;
        }
        if ended {
            return;
        }
    }
}
