//! A TCP relay in front of an API server, to kill it and bring it back mid-run: `kill` drops the listener
//! and every open connection at once (clients see resets and refusals, as when the API server process
//! dies), `restart` listens on the same port again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The relay: `url()` goes in the kubeconfig, `target` is the real server.
pub struct Relay {
    port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    /// Listen on a free port and relay to `target`.
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            target,
            tasks: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target;
        let accept = tokio::spawn({
            let tasks = tasks.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let connection = tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                    tasks.lock().unwrap().push(connection.abort_handle());
                }
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// The API server dies: no more connections, and open ones are cut.
    pub fn kill(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The API server comes back on the same port.
    pub async fn restart(&self) {
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}
