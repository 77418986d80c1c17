//! Times `ListPods` against a running `vessel api-service` (bench/api.sh): N calls each
//! without and with detail, one at a time over one connection, as a platform's poller
//! makes them. Prints a markdown table row per kind: calls, pods, p50, p90, p99, max (ms).
//!
//! Usage: list_pods_bench ADDRESS CALLS

use std::time::Instant;

use api::v1alpha::public_api_client::PublicApiClient;
use api::v1alpha::ListPodsRequest;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).expect("usage: list_pods_bench ADDRESS CALLS");
    let calls: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = PublicApiClient::connect(format!("http://{addr}"))
            .await
            .expect("connecting");
        for detail in [false, true] {
            let mut times = Vec::with_capacity(calls);
            let mut pods = 0;
            for _ in 0..calls {
                let t = Instant::now();
                let r = c
                    .list_pods(ListPodsRequest {
                        filters: vec![],
                        detail,
                    })
                    .await
                    .expect("ListPods");
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                pods = r.into_inner().pods.len();
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let q = |p: f64| times[((p * times.len() as f64) as usize).min(times.len() - 1)];
            println!(
                "| ListPods detail={detail} | {calls} | {pods} | {:.1} | {:.1} | {:.1} | {:.1} |",
                q(0.5),
                q(0.9),
                q(0.99),
                times[times.len() - 1]
            );
        }
    });
}
