//! The deployments `loadtest cluster` compares: nodes on one database and one Redis
//! prefix (started, killed and restarted by the harness), behind nginx rendered from
//! `deploy/nginx.conf.template` when there are several.

use std::process::{Child, Command, Stdio};

use anyhow::Context;
use uuid::Uuid;

use super::Plan;
use crate::server::{free_port, wait_ready, Server};
use crate::Common;

/// Nodes on one database and one Redis prefix, optionally behind nginx.
pub(super) struct Deployment {
    pub(super) nodes: Vec<Option<Server>>,
    ports: Vec<u16>,
    env: Vec<(String, String)>,
    database_url: String,
    jwt_secret: String,
    prefix: String,
    binary: String,
    nginx: Option<Nginx>,
    pub(super) restarts: usize,
}

impl Deployment {
    pub(super) async fn start(
        common: &Common,
        plan: &Plan,
        nodes: usize,
        name: &str,
    ) -> anyhow::Result<Deployment> {
        crate::baseline::recreate_database(&common.database_url, name).await?;
        let database_url = crate::baseline::database_url(&common.database_url, name);
        let prefix = format!("loadtest-{}", Uuid::new_v4().simple());
        let env = vec![
            ("REDIS_URL".to_owned(), redis_url()),
            ("BOXOFFICE_REDIS_PREFIX".to_owned(), prefix.clone()),
            ("BOXOFFICE_LEASE_MS".to_owned(), plan.lease_ms.to_string()),
            (
                "BOXOFFICE_ADMISSION_WINDOW_MINUTES".to_owned(),
                plan.flash.admission_window_minutes.to_string(),
            ),
        ];
        let mut deployment = Deployment {
            nodes: Vec::new(),
            ports: Vec::new(),
            env,
            database_url,
            jwt_secret: format!("loadtest-{}", Uuid::new_v4()),
            prefix,
            binary: common.server_bin.clone(),
            nginx: None,
            restarts: 0,
        };
        for i in 0..nodes {
            let port = free_port()?;
            deployment.ports.push(port);
            let node = deployment.spawn(i).await?;
            deployment.nodes.push(Some(node));
        }
        if nodes > 1 {
            deployment.nginx = Some(Nginx::start(&deployment.ports).await?);
        }
        Ok(deployment)
    }

    pub(super) async fn spawn(&self, i: usize) -> anyhow::Result<Server> {
        let node_id = format!("node-{}-{}", i + 1, self.restarts);
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("BOXOFFICE_NODE_ID", &node_id));
        Server::spawn(
            &self.binary,
            &self.database_url,
            &self.jwt_secret,
            self.ports[i],
            &env,
        )
        .await
    }

    /// Where buyers go: nginx, or the one node.
    pub(super) fn front(&self) -> String {
        match &self.nginx {
            Some(nginx) => nginx.url.clone(),
            None => format!("http://127.0.0.1:{}", self.ports[0]),
        }
    }

    pub(super) fn node_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// A handle on the deployment's database and key, for buyer tokens and checks.
    pub(super) fn server(&self) -> Server {
        Server::at(
            &self.front(),
            Some(self.database_url.clone()),
            Some(self.jwt_secret.clone()),
        )
    }

    /// The index of the node that holds the event's live lease.
    pub(super) async fn owner(
        &self,
        pool: &sqlx::PgPool,
        event_id: &str,
    ) -> anyhow::Result<Option<usize>> {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT node_url FROM onsale_leases WHERE event_id = $1::uuid AND expires_at > now()",
        )
        .bind(event_id)
        .fetch_optional(pool)
        .await?;
        Ok(owner.and_then(|url| (0..self.ports.len()).find(|i| self.node_url(*i) == url)))
    }

    pub(super) fn common_for(&self, common: &Common) -> Common {
        Common {
            url: Some(self.front()),
            server_database_url: Some(self.database_url.clone()),
            server_jwt_secret: Some(self.jwt_secret.clone()),
            skip_baseline: true,
            ..common.clone()
        }
    }

    /// Deletes the run's Redis keys.
    pub(super) async fn clean_redis(&self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
        }
    }
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// nginx in front of the nodes, from the deployment's template.
struct Nginx {
    child: Child,
    url: String,
}

impl Nginx {
    async fn start(ports: &[u16]) -> anyhow::Result<Nginx> {
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/nginx.conf.template"
        ))
        .context("reading deploy/nginx.conf.template")?;
        let dir = std::env::temp_dir().join(format!("boxoffice-nginx-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let upstreams: String = ports
            .iter()
            .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=3s; "))
            .collect();
        let config = template
            .replace("{{DIR}}", &dir.to_string_lossy())
            .replace("{{LISTEN}}", &format!("127.0.0.1:{port}"))
            .replace("{{UPSTREAMS}}", &upstreams);
        let path = dir.join("nginx.conf");
        std::fs::write(&path, config)?;
        let binary = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| !b.starts_with('/') || std::path::Path::new(b).exists())
            .unwrap_or("nginx");
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting nginx (scripts/cluster installs it)")?;
        let nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_ready(&nginx.url, "/readyz").await?;
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM lets the master stop its workers; KILL would leave them behind.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
