//! A WebSocket accepted only to be closed at once with a close code, for a client that
//! could not be registered: a browser's `WebSocket` never sees the HTTP status of a
//! refused upgrade, only a close code.

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode, CloseReason};

/// Completes the upgrade of `req` and closes it with 1013 (try again later) and
/// `reason` as its description.
pub fn try_again_later(
    req: &HttpRequest,
    stream: web::Payload,
    reason: &'static str,
) -> Result<HttpResponse, actix_web::Error> {
    ws::start(Refused(reason), req, stream)
}

struct Refused(&'static str);

impl Actor for Refused {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.close(Some(CloseReason {
            code: CloseCode::Again,
            description: Some(self.0.to_string()),
        }));
        ctx.stop();
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Refused {
    fn handle(&mut self, _: Result<ws::Message, ws::ProtocolError>, _: &mut Self::Context) {}
}
