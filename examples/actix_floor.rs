//! The memory floor of the stack shopchat's WebSocket sessions stand on: a bare
//! actix-web-actors echo server (one HTTP worker, one actor per socket, no state), with
//! the same allocator as the `shopchat` binary. `shopchat-bench idle` against it gives
//! what a connection costs before shopchat adds anything (BENCHMARKS.md, "Idle memory").
//!
//!     cargo run --release --example actix_floor -- 9700
//!
//! It accepts any path and query (the bench's `?token=` is ignored).

use actix::{Actor, ActorContext, StreamHandler};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Echo;

impl Actor for Echo {
    type Context = ws::WebsocketContext<Self>;
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Echo {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match item {
            Ok(ws::Message::Text(text)) => ctx.text(text),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}

async fn upgrade(req: HttpRequest, stream: web::Payload) -> actix_web::Result<HttpResponse> {
    ws::start(Echo, &req, stream)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p
            .parse()
            .map_err(|e| std::io::Error::other(format!("port {p:?}: {e}")))?,
        None => 9700,
    };
    HttpServer::new(|| App::new().default_service(web::to(upgrade)))
        .workers(1)
        .tcp_nodelay(true)
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
