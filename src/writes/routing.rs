//! A read of a shop's routing state (cluster mode) that goes through the write queue,
//! so it sees every decision queued before it; the view goes to the router that asked.

use std::time::Instant;

use diesel::QueryResult;
use tokio::sync::oneshot;

use super::{Effects, Write};
use crate::db::{service, Apply, DbConn, RoutingQuery, RoutingView, Touches};

pub struct ReadRouting {
    query: RoutingQuery,
    tx: oneshot::Sender<RoutingView>,
    view: Option<RoutingView>,
}

impl ReadRouting {
    pub fn new(query: RoutingQuery, tx: oneshot::Sender<RoutingView>) -> Box<ReadRouting> {
        Box::new(ReadRouting {
            query,
            tx,
            view: None,
        })
    }
}

impl Apply for ReadRouting {
    fn apply<'a>(&'a mut self, conn: &mut DbConn, _: &mut Touches<'a>) -> QueryResult<()> {
        self.view = Some(service::routing_view(conn, &self.query)?);
        Ok(())
    }
}

impl Write for ReadRouting {
    fn committed(self: Box<Self>, _: &mut dyn Effects, _: Instant) {
        if let Some(view) = self.view {
            let _ = self.tx.send(view);
        }
    }

    /// A router that gets no view decides from what it knows.
    fn failed(self: Box<Self>) {}
}
