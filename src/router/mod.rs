//! `ShopRouter`: one actor per shop, started on first use. It owns the shop's agents
//! (online flags, live connection counts), which agent serves which consumer, and the
//! conversations waiting for an agent. Routing decisions are made here, in arrival
//! order; the writes they imply go back to ChatServer's write queue, so a decision is
//! acted on (acks, pushes, backlogs) only once it is committed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::oneshot;

use crate::routing::{
    AgentFlag, AgentPresence, AgentReport, ReloadAgents, ReportAgents, RouteSend, RouterMail,
    StartRouter, TransferChat,
};

use crate::cluster::Cluster;
use crate::db::{
    DbExecutor, LoadShop, Profile, RoutingQuery, RoutingView, ServiceChatRow, ShopRow, ShopState,
};
use crate::domain::choice::{choose_agent, Candidate};
use crate::domain::Presenter;
use crate::error::ChatError;
use crate::ids::{ChatId, ChatKind, ShopId, UserId};
use crate::protocol::{self, code, Role, ServiceEvent};
use crate::writes::{Assign, Enqueue, ReadRouting, ReplyTx, StoreMessage, Write};

/// Serialized notices, and to whom.
type Notices = Vec<(UserId, Arc<str>)>;

/// A conversation counts toward its agent's load until it has been quiet this long.
pub const OPEN_IDLE_SECS: i64 = 30 * 60;

struct Agent {
    /// The service name the shop gave it; empty: its user nickname.
    name: String,
    profile: Profile,
    online: bool,
}

impl Agent {
    /// How consumers see it (service_nickname / service_avatar).
    fn display(&self) -> Profile {
        let mut p = self.profile.clone();
        if !self.name.is_empty() {
            p.nickname = self.name.clone();
        }
        p
    }
}

struct Conv {
    chat_id: String,
    agent: Option<UserId>,
    /// Some(order) while waiting for an agent; lower waited longer.
    waiting: Option<u64>,
    last_time: i64,
}

/// What the other nodes know, read just before each decision in cluster mode.
#[derive(Default)]
struct Shared {
    /// Agents routable on other nodes (Redis).
    routable: HashSet<UserId>,
    /// Agents with a live connection on any node (Redis; read for reports only).
    connected: HashSet<UserId>,
    /// Open conversations per agent (the database).
    loads: HashMap<UserId, usize>,
}

/// What a decision needs read first, in cluster mode.
#[derive(Clone, Copy, Default)]
struct Want {
    /// The conversation about to be routed.
    consumer: Option<UserId>,
    /// The conversations waiting for an agent.
    waiting: bool,
    /// Which agents are connected anywhere.
    connected: bool,
}

pub struct ShopRouter {
    shop: ShopId,
    /// None until loaded, and while the shop does not exist.
    info: Option<ShopRow>,
    agents: HashMap<UserId, Agent>,
    /// Live connections per agent, as ChatServer reports them.
    presence: HashMap<UserId, usize>,
    convs: HashMap<UserId, Conv>,
    next_wait: u64,
    /// ChatServer's write queue, where decisions are stored and followed up.
    queue: Recipient<Enqueue>,
    db: Addr<DbExecutor>,
    presenter: Presenter,
    rng: StdRng,
    /// Cluster mode: routable agents are shared through Redis and assignments are read
    /// from the database before each decision (other nodes may have changed them).
    cluster: Option<Cluster>,
    shared: Shared,
}

impl ShopRouter {
    /// How ChatServer starts routers: each with the database, the push shapes and the
    /// cluster link given here.
    pub fn starter(
        db: Addr<DbExecutor>,
        presenter: Presenter,
        cluster: Option<Cluster>,
    ) -> StartRouter {
        Box::new(move |shop, queue| {
            let addr = ShopRouter::new(shop, queue, db.clone(), presenter.clone(), cluster.clone())
                .start();
            RouterMail {
                route: addr.clone().recipient(),
                presence: addr.clone().recipient(),
                flag: addr.clone().recipient(),
                reload: addr.clone().recipient(),
                transfer: addr.clone().recipient(),
                report: addr.recipient(),
            }
        })
    }

    pub fn new(
        shop: ShopId,
        queue: Recipient<Enqueue>,
        db: Addr<DbExecutor>,
        presenter: Presenter,
        cluster: Option<Cluster>,
    ) -> ShopRouter {
        ShopRouter {
            shop,
            info: None,
            agents: HashMap::new(),
            presence: HashMap::new(),
            convs: HashMap::new(),
            next_wait: 1,
            queue,
            db,
            presenter,
            rng: StdRng::from_entropy(),
            cluster,
            shared: Shared::default(),
        }
    }

    /// Runs `then` once what other nodes may have changed is read (cluster mode; the
    /// mailbox waits meanwhile, so decisions keep their arrival order), or at once on a
    /// single node. The database read goes through the write queue, so it sees every
    /// decision this router queued before it.
    fn with_fresh_view(
        &mut self,
        want: Want,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        let Some(cluster) = self.cluster.clone() else {
            return then(self, ctx);
        };
        let (tx, rx) = oneshot::channel();
        let query = RoutingQuery {
            shop: self.shop,
            consumer: want.consumer,
            waiting: want.waiting,
            open_since: crate::clock::unix_now() as i64 - OPEN_IDLE_SECS,
        };
        self.queue
            .do_send(Enqueue(vec![ReadRouting::new(query, tx)]));
        let shop = self.shop;
        let agents: Vec<UserId> = match want.connected {
            true => self.agents.keys().copied().collect(),
            false => Vec::new(),
        };
        async move {
            let connected = async {
                match want.connected {
                    true => cluster.online_anywhere(&agents).await.ok(),
                    false => None,
                }
            };
            let (view, routable, connected) =
                tokio::join!(rx, cluster.routable_elsewhere(shop), connected);
            (view.ok(), routable.ok(), connected)
        }
        .into_actor(self)
        .map(move |(view, routable, connected), act, ctx| {
            act.apply_view(want, view, routable, connected);
            then(act, ctx);
        })
        .wait(ctx);
    }

    /// Takes in what was read. Without Redis only this node's agents count; without
    /// the database the router decides from what it remembers.
    fn apply_view(
        &mut self,
        want: Want,
        view: Option<RoutingView>,
        routable: Option<HashSet<UserId>>,
        connected: Option<HashSet<UserId>>,
    ) {
        self.shared.routable = routable.unwrap_or_default();
        self.shared.connected = connected.unwrap_or_default();
        let Some(view) = view else {
            return;
        };
        self.shared.loads = view.loads.into_iter().collect();
        if let Some(consumer) = want.consumer {
            match view.conv {
                Some(row) => self.remember(row),
                None => {
                    self.convs.remove(&consumer);
                }
            }
        }
        if want.waiting {
            // The database says who waits, and since when (a msg_id: a global order).
            for conv in self.convs.values_mut() {
                conv.waiting = None;
            }
            for row in view.waiting {
                self.remember(row);
            }
        }
    }

    fn remember(&mut self, row: ServiceChatRow) {
        let conv = Conv {
            chat_id: row.chat_id,
            agent: (row.agent_uid.0 > 0).then_some(row.agent_uid),
            waiting: (row.waiting_from > 0).then_some(row.waiting_from as u64),
            last_time: row.last_time,
        };
        self.convs.insert(row.consumer_uid, conv);
    }

    /// Tells the other nodes which agents are routable here.
    fn announce(&self) {
        if let Some(cluster) = &self.cluster {
            let here = self
                .agents
                .keys()
                .filter(|uid| self.routable_here(**uid))
                .copied()
                .collect();
            cluster.set_routable(self.shop, here);
        }
    }

    fn apply_agents(&mut self, state: &ShopState) {
        self.info = state.shop.clone();
        self.agents = state
            .agents
            .iter()
            .map(|(a, p)| {
                let agent = Agent {
                    name: a.name.clone(),
                    profile: p.clone(),
                    online: a.online,
                };
                (a.uid, agent)
            })
            .collect();
    }

    fn apply_chats(&mut self, state: ShopState) {
        let mut waiting: Vec<(i64, UserId)> = Vec::new();
        for c in state.chats {
            let consumer = c.consumer_uid;
            if c.waiting_from > 0 {
                waiting.push((c.waiting_from, consumer));
            }
            self.convs.insert(
                consumer,
                Conv {
                    chat_id: c.chat_id,
                    agent: (c.agent_uid.0 > 0).then_some(c.agent_uid),
                    waiting: None,
                    last_time: c.last_time,
                },
            );
        }
        waiting.sort();
        for (_, consumer) in waiting {
            let order = self.take_wait_order();
            if let Some(conv) = self.convs.get_mut(&consumer) {
                conv.waiting = Some(order);
            }
        }
    }

    fn take_wait_order(&mut self) -> u64 {
        self.next_wait += 1;
        self.next_wait
    }

    /// Flagged online and connected to this node.
    fn routable_here(&self, uid: UserId) -> bool {
        self.agents.get(&uid).is_some_and(|a| a.online)
            && self.presence.get(&uid).copied().unwrap_or(0) > 0
    }

    /// Routable here, or (cluster mode) on another node, flagged online as far as this
    /// node knows too.
    fn routable(&self, uid: UserId) -> bool {
        self.routable_here(uid)
            || (self.shared.routable.contains(&uid)
                && self.agents.get(&uid).is_some_and(|a| a.online))
    }

    fn load(&self, uid: UserId, now: i64) -> usize {
        if self.cluster.is_some() {
            return self.shared.loads.get(&uid).copied().unwrap_or(0);
        }
        self.convs
            .values()
            .filter(|c| c.agent == Some(uid) && c.last_time >= now - OPEN_IDLE_SECS)
            .count()
    }

    fn candidates(&self, now: i64) -> Vec<Candidate> {
        let mut c: Vec<Candidate> = self
            .agents
            .keys()
            .filter(|uid| self.routable(**uid))
            .map(|uid| Candidate {
                agent: *uid,
                load: self.load(*uid, now),
            })
            .collect();
        // HashMap order is random per process; a stable order keeps runs reproducible.
        c.sort_by_key(|c| c.agent);
        c
    }

    fn capacity(&self) -> usize {
        self.info.as_ref().map_or(0, |s| s.capacity.max(0) as usize)
    }

    fn pick(&mut self, assigned: Option<UserId>, now: i64) -> Option<UserId> {
        let candidates = self.candidates(now);
        let capacity = self.capacity();
        choose_agent(assigned, &candidates, capacity, &mut self.rng)
    }

    /// The write that hands `consumer`'s conversation to `agent`, pushing it the backlog.
    fn assignment(
        &self,
        consumer: UserId,
        agent: UserId,
        notices: Notices,
        reply: Option<ReplyTx>,
        only_if_waiting: bool,
    ) -> Box<dyn Write> {
        let mut assign = Assign::new(self.shop, consumer, agent, only_if_waiting);
        assign.notices = notices;
        assign.reply = reply;
        Box::new(assign)
    }

    /// The writes a routed message implies, or the refusal with the reply channel to tell.
    fn route(&mut self, msg: RouteSend) -> Result<Vec<Box<dyn Write>>, (ChatError, ReplyTx)> {
        let Some(shop) = self.info.clone() else {
            return Err((ChatError::UnknownShop, msg.reply));
        };
        if msg.role == Role::Agent && !self.agents.contains_key(&msg.sender.uid) {
            return Err((ChatError::Forbidden, msg.reply));
        }
        let RouteSend {
            mut message,
            role,
            sender,
            conn,
            reply,
        } = msg;
        let consumer = message.consumer_uid;
        let now = message.createtime;
        let mut ops: Vec<Box<dyn Write>> = Vec::new();
        let (shown_sender, audience) = match role {
            Role::Consumer => {
                let assigned = self.convs.get(&consumer).and_then(|c| c.agent);
                let chosen = self.pick(assigned, now);
                let was_waiting = self
                    .convs
                    .get(&consumer)
                    .is_some_and(|c| c.waiting.is_some());
                let order = (chosen.is_none() && !was_waiting).then(|| self.take_wait_order());
                let conv = self.convs.entry(consumer).or_insert_with(|| Conv {
                    chat_id: message.chat_id.clone(),
                    agent: None,
                    waiting: None,
                    last_time: now,
                });
                conv.last_time = now;
                match chosen {
                    Some(agent) => {
                        conv.agent = Some(agent);
                        conv.waiting = None;
                        message.agent_uid = agent;
                        if was_waiting {
                            ops.push(self.assignment(consumer, agent, Vec::new(), None, true));
                        }
                        (sender, vec![consumer, agent])
                    }
                    None => {
                        if let Some(order) = order {
                            conv.waiting = Some(order);
                        }
                        (sender, vec![consumer])
                    }
                }
            }
            Role::Agent => {
                // The live profile (kept fresh by ChatServer), under the shop's service name if any.
                let mut shown = sender.clone();
                if let Some(name) = self
                    .agents
                    .get(&sender.uid)
                    .map(|a| &a.name)
                    .filter(|n| !n.is_empty())
                {
                    shown.nickname = name.clone();
                }
                let conv = self.convs.entry(consumer).or_insert_with(|| Conv {
                    chat_id: message.chat_id.clone(),
                    agent: None,
                    waiting: None,
                    last_time: now,
                });
                conv.agent = Some(sender.uid);
                conv.waiting = None;
                conv.last_time = now;
                message.agent_uid = sender.uid;
                (shown, vec![consumer, sender.uid])
            }
        };
        let push = self.presenter.push(&message, 0, &shown_sender, Some(&shop));
        ops.push(StoreMessage::new(message, push, audience, conn, reply));
        Ok(ops)
    }

    /// Hands waiting conversations, oldest first, to routable agents (in cluster mode,
    /// those the database says wait, to agents routable on any node).
    fn drain(&mut self, ctx: &mut Context<Self>) {
        let want = Want {
            waiting: true,
            ..Want::default()
        };
        self.with_fresh_view(want, ctx, |act, _| act.drain_now());
    }

    fn drain_now(&mut self) {
        let now = crate::clock::unix_now() as i64;
        let mut waiting: Vec<(u64, UserId)> = self
            .convs
            .iter()
            .filter_map(|(consumer, c)| c.waiting.map(|order| (order, *consumer)))
            .collect();
        if waiting.is_empty() || self.candidates(now).is_empty() {
            return;
        }
        waiting.sort();
        let mut ops = Vec::new();
        for (_, consumer) in waiting {
            let assigned = self.convs.get(&consumer).and_then(|c| c.agent);
            let Some(agent) = self.pick(assigned, now) else {
                break;
            };
            if let Some(conv) = self.convs.get_mut(&consumer) {
                conv.agent = Some(agent);
                conv.waiting = None;
                conv.last_time = now;
            }
            log::info!(
                "shop {}: waiting consumer {consumer} assigned to agent {agent}",
                self.shop
            );
            ops.push(self.assignment(consumer, agent, Vec::new(), None, true));
        }
        self.queue.do_send(Enqueue(ops));
    }

    /// The consumer of one of this shop's conversations, from its chat_id: the number
    /// that is not the shop's (both are, when the consumer's id equals the shop's).
    fn consumer_of(&self, chat_id: &str) -> Option<UserId> {
        let ChatKind::Service(a, b) = ChatId::parse(chat_id)? else {
            return None;
        };
        let shop = self.shop.0;
        let consumer = if a == shop {
            b
        } else if b == shop {
            a
        } else {
            return None;
        };
        (ChatId::service(self.shop, UserId(consumer)).as_str() == chat_id)
            .then_some(UserId(consumer))
    }

    /// Gives the conversation to `msg.to` here; returns its consumer and the notices to send.
    fn transfer(&mut self, msg: &TransferChat) -> Result<(UserId, Notices), ChatError> {
        if !self.agents.contains_key(&msg.by) {
            return Err(ChatError::Forbidden);
        }
        let consumer = self.consumer_of(&msg.chat_id).ok_or(ChatError::NotFound)?;
        if !self.convs.contains_key(&consumer) {
            return Err(ChatError::NotFound);
        }
        if !self.routable(msg.to) {
            return Err(ChatError::AgentUnavailable);
        }
        let now = crate::clock::unix_now() as i64;
        let conv = self.convs.get_mut(&consumer).ok_or(ChatError::NotFound)?;
        let from = conv.agent;
        conv.agent = Some(msg.to);
        conv.waiting = None;
        conv.last_time = now;
        let event = ServiceEvent {
            event: "transfer",
            chat_id: conv.chat_id.clone(),
            shop_id: self.shop.0,
            consumer_uid: consumer.0,
            from_uid: from.map_or(0, |f| f.0),
            to_uid: msg.to.0,
        };
        let text: Arc<str> = protocol::reply_with(code::SERVICE_EVENT, &event).into();
        let mut notices = vec![(msg.to, text.clone())];
        if let Some(from) = from.filter(|f| *f != msg.to) {
            notices.push((from, text));
        }
        log::info!(
            "shop {}: consumer {consumer} transferred from {from:?} to {} by {}",
            self.shop,
            msg.to,
            msg.by
        );
        Ok((consumer, notices))
    }
}

impl ShopRouter {
    fn route_and_queue(&mut self, msg: RouteSend) {
        match self.route(msg) {
            Ok(ops) => self.queue.do_send(Enqueue(ops)),
            Err((e, reply)) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// The agents as this router sees them; `None` if the shop does not exist.
    fn report(&self) -> Option<Vec<AgentReport>> {
        self.info.as_ref()?;
        let now = crate::clock::unix_now() as i64;
        let mut report: Vec<AgentReport> = self
            .agents
            .iter()
            .map(|(uid, a)| AgentReport {
                uid: uid.0,
                name: a.display().nickname,
                online: a.online,
                connected: self.presence.get(uid).copied().unwrap_or(0) > 0
                    || self.shared.connected.contains(uid),
                open_conversations: self.load(*uid, now),
            })
            .collect();
        report.sort_by_key(|r| r.uid);
        Some(report)
    }
}

impl Actor for ShopRouter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Nothing is routed before the shop's state is in: messages wait in the mailbox.
        self.db
            .send(LoadShop { shop: self.shop })
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(Ok(state)) => {
                    act.apply_agents(&state);
                    act.apply_chats(state);
                    act.announce();
                    log::debug!(
                        "shop {}: router started with {} agents",
                        act.shop,
                        act.agents.len()
                    );
                }
                other => {
                    let err = other.map(|r| r.err());
                    log::error!(
                        "shop {}: cannot load the shop, router stops: {err:?}",
                        act.shop
                    );
                    ctx.stop();
                }
            })
            .wait(ctx);
    }
}

impl Handler<RouteSend> for ShopRouter {
    type Result = ();

    fn handle(&mut self, msg: RouteSend, ctx: &mut Context<Self>) {
        // A consumer's message is routed on the freshest view; an agent's needs none.
        let want = Want {
            consumer: (msg.role == Role::Consumer).then_some(msg.message.consumer_uid),
            ..Want::default()
        };
        if want.consumer.is_none() {
            return self.route_and_queue(msg);
        }
        self.with_fresh_view(want, ctx, move |act, _| act.route_and_queue(msg));
    }
}

impl Handler<AgentPresence> for ShopRouter {
    type Result = ();

    fn handle(&mut self, msg: AgentPresence, ctx: &mut Context<Self>) {
        let was = self.routable_here(msg.uid);
        if msg.conns == 0 {
            self.presence.remove(&msg.uid);
        } else {
            self.presence.insert(msg.uid, msg.conns);
        }
        self.announce();
        if !was && self.routable_here(msg.uid) {
            self.drain(ctx);
        }
    }
}

impl Handler<AgentFlag> for ShopRouter {
    type Result = ();

    fn handle(&mut self, msg: AgentFlag, ctx: &mut Context<Self>) {
        if let Some(agent) = self.agents.get_mut(&msg.uid) {
            agent.online = msg.online;
        }
        self.announce();
        self.drain(ctx);
    }
}

impl Handler<ReloadAgents> for ShopRouter {
    type Result = ();

    fn handle(&mut self, _: ReloadAgents, ctx: &mut Context<Self>) {
        self.db
            .send(LoadShop { shop: self.shop })
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(Ok(state)) => {
                    act.apply_agents(&state);
                    act.announce();
                    act.drain(ctx);
                }
                other => log::error!(
                    "shop {}: reloading agents failed: {:?}",
                    act.shop,
                    other.map(|r| r.err())
                ),
            })
            .wait(ctx);
    }
}

impl Handler<TransferChat> for ShopRouter {
    type Result = ();

    fn handle(&mut self, msg: TransferChat, ctx: &mut Context<Self>) {
        let want = Want {
            consumer: self.consumer_of(&msg.chat_id),
            ..Want::default()
        };
        self.with_fresh_view(want, ctx, move |act, _| match act.transfer(&msg) {
            Ok((consumer, notices)) => {
                let write = act.assignment(consumer, msg.to, notices, Some(msg.reply), false);
                act.queue.do_send(Enqueue(vec![write]));
            }
            Err(e) => {
                let _ = msg.reply.send(Err(e));
            }
        });
    }
}

impl Handler<ReportAgents> for ShopRouter {
    type Result = ResponseFuture<Option<Vec<AgentReport>>>;

    fn handle(&mut self, _: ReportAgents, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let want = Want {
            connected: true,
            ..Want::default()
        };
        self.with_fresh_view(want, ctx, move |act, _| {
            let _ = tx.send(act.report());
        });
        Box::pin(async move { rx.await.ok().flatten() })
    }
}
