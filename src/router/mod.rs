//! `ShopRouter`: one actor per shop, started on first use. It owns the shop's agents
//! (status, live connection counts), where each consumer's conversation stands (waiting,
//! open with an agent, resolved) and the queue. Routing decisions are made here, in
//! arrival order, by the session state machine of `domain::session`; the writes they
//! imply go back to ChatServer's write queue, so a decision is acted on (acks, pushes,
//! events, auto replies) only once it is committed.

use std::collections::{HashMap, HashSet};

use actix::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::oneshot;

use crate::routing::{
    AgentPresence, AgentReport, AgentStatusSet, ReloadAgents, ReportAgents, ResolveChat, RouteSend,
    RouterMail, SessionAgent, StartRouter, TransferChat,
};

use crate::cluster::Cluster;
use crate::db::{
    DbExecutor, LoadShop, NewMessage, Profile, RoutingQuery, RoutingView, ServiceChatRow, ShopRow,
    ShopState,
};
use crate::domain::choice::{choose_agent, Candidate};
use crate::domain::hours::{WorkingHours, WorkingHoursSpec};
use crate::domain::session::{self, AutoReply, ConvState, Event, Pick, Reason, Step};
use crate::domain::Presenter;
use crate::error::ChatError;
use crate::ids::{ChatId, ShopId, UserId};
use crate::protocol::service::{AgentRole, AgentStatus};
use crate::protocol::{ChatPush, ChatType, MsgType, Role};
use crate::writes::{Enqueue, ReadRouting, ReplyTx, ServiceTurn, StoreMessage};

struct Agent {
    /// The service name the shop gave it; empty: its user nickname.
    name: String,
    profile: Profile,
    status: AgentStatus,
    supervisor: bool,
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
    state: ConvState,
    /// The agent who has it, or had it last (for stickiness).
    agent: Option<UserId>,
    /// Some(order) while waiting for an agent; lower waited longer.
    waiting: Option<u64>,
    last_time: i64,
    /// Auto replies the current session has had.
    auto_sent: i32,
}

impl Conv {
    fn new(chat_id: String, now: i64) -> Conv {
        Conv {
            chat_id,
            state: ConvState::Idle,
            agent: None,
            waiting: None,
            last_time: now,
            auto_sent: 0,
        }
    }

    fn from_row(row: ServiceChatRow) -> Conv {
        Conv {
            state: ConvState::from_row(row.state, row.agent_uid),
            agent: (row.agent_uid.0 > 0).then_some(row.agent_uid),
            waiting: None,
            last_time: row.last_time,
            auto_sent: row.auto_sent,
            chat_id: row.chat_id,
        }
    }
}

/// What the other nodes know, read just before each decision in cluster mode.
#[derive(Default)]
struct Shared {
    /// Agents connected and not offline on other nodes (Redis): reachable for their own
    /// sessions, and routable if online.
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
    /// The shop's working hours, if it has any.
    hours: Option<WorkingHours>,
    blocked: HashSet<UserId>,
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
                status: addr.clone().recipient(),
                resolve: addr.clone().recipient(),
                reload: addr.clone().recipient(),
                transfer: addr.clone().recipient(),
                report: addr.clone().recipient(),
                session_agent: addr.recipient(),
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
            hours: None,
            blocked: HashSet::new(),
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
        let consumer = row.consumer_uid;
        let waiting = (row.state == ConvState::WAITING).then_some(row.waiting_from.max(1) as u64);
        let mut conv = Conv::from_row(row);
        conv.waiting = waiting;
        self.convs.insert(consumer, conv);
    }

    /// Tells the other nodes which agents are reachable here (connected, not offline).
    fn announce(&self) {
        if let Some(cluster) = &self.cluster {
            let here = self
                .agents
                .keys()
                .filter(|uid| self.reachable_here(**uid))
                .copied()
                .collect();
            cluster.set_routable(self.shop, here);
        }
    }

    fn apply_agents(&mut self, state: &ShopState) {
        self.info = state.shop.clone();
        self.hours = self
            .info
            .as_ref()
            .and_then(|s| s.working_hours.as_deref())
            .and_then(|json| {
                let spec: WorkingHoursSpec = serde_json::from_str(json).ok()?;
                WorkingHours::parse(&spec)
                    .inspect_err(|e| log::error!("shop {}: stored working hours: {e}", self.shop))
                    .ok()
            });
        self.blocked = state.blocked.iter().copied().collect();
        self.agents = state
            .agents
            .iter()
            .map(|(a, p)| {
                let agent = Agent {
                    name: a.name.clone(),
                    profile: p.clone(),
                    status: AgentStatus::from_flags(a.online, a.away),
                    supervisor: a.supervisor,
                };
                (a.uid, agent)
            })
            .collect();
    }

    fn apply_chats(&mut self, state: ShopState) {
        let mut waiting: Vec<(i64, UserId)> = Vec::new();
        for c in state.chats {
            let consumer = c.consumer_uid;
            if c.state == ConvState::WAITING {
                waiting.push((c.waiting_from, consumer));
            }
            self.convs.insert(consumer, Conv::from_row(c));
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

    fn status(&self, uid: UserId) -> AgentStatus {
        self.agents
            .get(&uid)
            .map_or(AgentStatus::Offline, |a| a.status)
    }

    fn connected_here(&self, uid: UserId) -> bool {
        self.presence.get(&uid).copied().unwrap_or(0) > 0
    }

    /// Connected to this node and not offline: it gets its own sessions' messages.
    fn reachable_here(&self, uid: UserId) -> bool {
        self.status(uid) != AgentStatus::Offline && self.connected_here(uid)
    }

    /// Reachable here, or (cluster mode) on another node.
    fn reachable(&self, uid: UserId) -> bool {
        self.reachable_here(uid)
            || (self.status(uid) != AgentStatus::Offline && self.shared.routable.contains(&uid))
    }

    /// Status online and reachable: it may be given new, reopened and waiting sessions.
    fn routable(&self, uid: UserId) -> bool {
        self.status(uid) == AgentStatus::Online && self.reachable(uid)
    }

    /// Open sessions of `uid` (capacity counts these).
    fn load(&self, uid: UserId) -> usize {
        if self.cluster.is_some() {
            return self.shared.loads.get(&uid).copied().unwrap_or(0);
        }
        self.convs
            .values()
            .filter(|c| c.state == ConvState::Open(uid))
            .count()
    }

    fn candidates(&self) -> Vec<Candidate> {
        let hard = self.capacity_is_hard();
        let capacity = self.capacity();
        let mut c: Vec<Candidate> = self
            .agents
            .keys()
            .filter(|uid| self.routable(**uid))
            .map(|uid| Candidate {
                agent: *uid,
                load: self.load(*uid),
            })
            .filter(|c| !hard || c.load < capacity)
            .collect();
        // HashMap order is random per process; a stable order keeps runs reproducible.
        c.sort_by_key(|c| c.agent);
        c
    }

    fn capacity(&self) -> usize {
        self.info.as_ref().map_or(0, |s| s.capacity.max(0) as usize)
    }

    /// `queue_when_full`: an agent at capacity gets nothing new; consumers wait instead.
    fn capacity_is_hard(&self) -> bool {
        self.capacity() > 0 && self.info.as_ref().is_some_and(|s| s.queue_when_full)
    }

    /// The §5 rule for a conversation that needs an agent: the one who served it last
    /// if routable, else a random routable one (`fallback` says why).
    fn pick(&mut self, last: Option<UserId>, fallback: Reason) -> Option<Pick> {
        let candidates = self.candidates();
        let capacity = self.capacity();
        let agent = choose_agent(last, &candidates, capacity, &mut self.rng)?;
        let reason = match Some(agent) == last {
            true => Reason::Sticky,
            false => fallback,
        };
        // In cluster mode the loads come from the database; count this pick until the next read.
        if self.cluster.is_some() {
            *self.shared.loads.entry(agent).or_default() += 1;
        }
        Some(Pick { agent, reason })
    }

    /// What the auto replies need to know of the shop now.
    fn shop_now(&self, now: i64) -> session::Shop {
        let text = |t: Option<&String>| t.is_some_and(|t| !t.trim().is_empty());
        let info = self.info.as_ref();
        session::Shop {
            has_welcome: text(info.and_then(|s| s.welcome_msg.as_ref())),
            has_offline: text(info.and_then(|s| s.offline_msg.as_ref())),
            open_now: self.hours.as_ref().is_none_or(|h| h.open_at(now)),
        }
    }

    /// How consumers see agent `uid`.
    fn card(&self, uid: UserId) -> Profile {
        self.agents
            .get(&uid)
            .map_or_else(|| Profile::placeholder(uid), |a| a.display())
    }

    /// The auto reply `which`, as the shop sends it to `consumer`.
    fn auto_reply(
        &self,
        which: AutoReply,
        consumer: UserId,
        chat_id: &str,
    ) -> Option<(NewMessage, ChatPush)> {
        let info = self.info.as_ref()?;
        let text = match which {
            AutoReply::Welcome => info.welcome_msg.as_ref(),
            AutoReply::Offline => info.offline_msg.as_ref(),
        }?;
        let mut m = NewMessage::new(
            ChatType::Service,
            chat_id.to_string(),
            MsgType::Text,
            text.clone(),
            UserId(0),
            consumer,
            None,
        );
        m.shop_id = self.shop;
        m.consumer_uid = consumer;
        m.from_agent = true;
        m.auto_reply = true;
        let push = self
            .presenter
            .push(&m, 0, &Profile::placeholder(UserId(0)), Some(info));
        Some((m, push))
    }

    /// Takes `step` into what this router remembers of `consumer`'s conversation.
    fn remember_step(
        &mut self,
        consumer: UserId,
        chat_id: &str,
        step: &Step,
        now: i64,
        wrote: bool,
    ) {
        let order = (step.state == ConvState::Waiting
            && self
                .convs
                .get(&consumer)
                .is_none_or(|c| c.waiting.is_none()))
        .then(|| self.take_wait_order());
        let has_auto = step
            .auto_reply()
            .is_some_and(|a| self.auto_reply(a, consumer, chat_id).is_some());
        let conv = self
            .convs
            .entry(consumer)
            .or_insert_with(|| Conv::new(chat_id.to_string(), now));
        conv.state = step.state;
        if let Some(agent) = step.state.agent() {
            conv.agent = Some(agent);
        }
        conv.waiting = match step.state {
            ConvState::Waiting => conv.waiting.or(order),
            _ => None,
        };
        if step.new_session() {
            conv.auto_sent = 0;
        }
        if let (Some(a), true) = (step.auto_reply(), has_auto) {
            conv.auto_sent |= a.bit();
        }
        if wrote {
            conv.last_time = now;
        }
    }

    /// The write that carries out `step` for `consumer`'s conversation.
    fn turn(&self, consumer: UserId, chat_id: &str, step: Step, now: i64) -> ServiceTurn {
        let mut turn = ServiceTurn::new(self.shop, consumer, chat_id.to_string(), step, now);
        turn.auto = turn
            .step
            .auto_reply()
            .and_then(|a| self.auto_reply(a, consumer, chat_id));
        turn.agents = self.agents.keys().copied().collect();
        turn.agent_card = turn.step.state.agent().map(|a| self.card(a));
        turn
    }

    /// The writes a routed message implies, or the refusal with the reply channel to tell.
    fn route(&mut self, msg: RouteSend) -> Result<ServiceTurn, (ChatError, ReplyTx)> {
        let Some(shop) = self.info.clone() else {
            return Err((ChatError::UnknownShop, msg.reply));
        };
        let consumer = msg.message.consumer_uid;
        let event = match msg.role {
            Role::Agent if !self.agents.contains_key(&msg.sender.uid) => {
                return Err((ChatError::Forbidden, msg.reply))
            }
            Role::Agent => Event::AgentWrote {
                agent: msg.sender.uid,
            },
            Role::Consumer if self.blocked.contains(&consumer) => {
                return Err((ChatError::Blocked, msg.reply))
            }
            Role::Consumer => {
                let conv = self.convs.get(&consumer);
                let state = conv.map_or(ConvState::Idle, |c| c.state);
                let last = conv.and_then(|c| c.agent);
                let reachable = state.agent().is_some_and(|a| self.reachable(a));
                let pick = match (state, reachable) {
                    (ConvState::Open(_), true) => None,
                    (ConvState::Waiting, _) => self.pick(last, Reason::Queue),
                    _ => self.pick(last, Reason::Random),
                };
                Event::ConsumerWrote { reachable, pick }
            }
        };
        let RouteSend {
            mut message,
            role,
            sender,
            conn,
            reply,
        } = msg;
        let now = message.createtime;
        let (state, auto_sent) = self
            .convs
            .get(&consumer)
            .map_or((ConvState::Idle, 0), |c| (c.state, c.auto_sent));
        let step = match session::step(state, auto_sent, event, self.shop_now(now)) {
            Ok(step) => step,
            Err(e) => return Err((e, reply)),
        };
        let chat_id = message.chat_id.clone();
        self.remember_step(consumer, &chat_id, &step, now, true);
        let agent = step.state.agent();
        message.agent_uid = agent.unwrap_or_default();
        let shown_sender = match role {
            // The live profile (kept fresh by ChatServer), under the shop's service name if any.
            Role::Agent => {
                let mut shown = sender.clone();
                if let Some(name) = self
                    .agents
                    .get(&sender.uid)
                    .map(|a| &a.name)
                    .filter(|n| !n.is_empty())
                {
                    shown.nickname = name.clone();
                }
                shown
            }
            Role::Consumer => sender,
        };
        let mut audience = vec![consumer];
        audience.extend(agent);
        let push = self.presenter.push(&message, 0, &shown_sender, Some(&shop));
        let mut turn = self.turn(consumer, &chat_id, step, now);
        turn.message = Some(StoreMessage::new(message, push, audience, conn, reply));
        Ok(turn)
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
        if waiting.is_empty() || self.candidates().is_empty() {
            return;
        }
        waiting.sort();
        let mut ops: Vec<Box<dyn crate::writes::Write>> = Vec::new();
        for (_, consumer) in waiting {
            let Some(conv) = self.convs.get(&consumer) else {
                continue;
            };
            let (last, auto_sent, chat_id) = (conv.agent, conv.auto_sent, conv.chat_id.clone());
            let Some(pick) = self.pick(last, Reason::Queue) else {
                break;
            };
            let Ok(step) = session::step(
                ConvState::Waiting,
                auto_sent,
                Event::Handed(pick),
                self.shop_now(now),
            ) else {
                continue;
            };
            self.remember_step(consumer, &chat_id, &step, now, false);
            log::info!(
                "shop {}: waiting consumer {consumer} assigned to agent {} ({})",
                self.shop,
                pick.agent,
                pick.reason.name()
            );
            let mut turn = self.turn(consumer, &chat_id, step, now);
            turn.only_if = Some(ConvState::WAITING);
            ops.push(Box::new(turn));
        }
        self.queue.do_send(Enqueue(ops));
    }

    /// The consumer of one of this shop's conversations, from its chat_id.
    fn consumer_of(&self, chat_id: &str) -> Option<UserId> {
        ChatId::service_consumer(chat_id, self.shop)
    }

    /// Gives the conversation to `msg.to`: the write that does it.
    fn transfer(&mut self, msg: &TransferChat) -> Result<ServiceTurn, ChatError> {
        if !self.agents.contains_key(&msg.by) {
            return Err(ChatError::Forbidden);
        }
        let consumer = self.consumer_of(&msg.chat_id).ok_or(ChatError::NotFound)?;
        let conv = self.convs.get(&consumer).ok_or(ChatError::NotFound)?;
        let (state, auto_sent) = (conv.state, conv.auto_sent);
        if !self.routable(msg.to) {
            return Err(ChatError::AgentUnavailable);
        }
        let now = crate::clock::unix_now() as i64;
        let step = session::step(
            state,
            auto_sent,
            Event::Transferred { to: msg.to },
            self.shop_now(now),
        )?;
        self.remember_step(consumer, &msg.chat_id, &step, now, false);
        log::info!(
            "shop {}: consumer {consumer} transferred from {:?} to {} by {}",
            self.shop,
            state.agent(),
            msg.to,
            msg.by
        );
        let mut turn = self.turn(consumer, &msg.chat_id, step, now);
        turn.only_if = Some(state.code());
        Ok(turn)
    }

    /// Resolves `consumer`'s conversation: the write that does it, or `None` if there is
    /// nothing to resolve (already resolved; for the sweep, no longer idle).
    fn resolve(&mut self, msg: &ResolveChat) -> Result<Option<ServiceTurn>, ChatError> {
        if msg.by.0 != 0 && !self.agents.contains_key(&msg.by) {
            return Err(ChatError::Forbidden);
        }
        let consumer = self.consumer_of(&msg.chat_id).ok_or(ChatError::NotFound)?;
        let Some(conv) = self.convs.get(&consumer) else {
            return Ok(None);
        };
        let (state, auto_sent) = (conv.state, conv.auto_sent);
        if let Some(before) = msg.idle_before {
            // The sweep resolves open sessions only, and only idle ones.
            if state.agent().is_none() || conv.last_time >= before {
                return Ok(None);
            }
        }
        let now = crate::clock::unix_now() as i64;
        let step = session::step(
            state,
            auto_sent,
            Event::Resolved { by: msg.by },
            self.shop_now(now),
        )?;
        if step.effects.is_empty() {
            return Ok(None);
        }
        self.remember_step(consumer, &msg.chat_id, &step, now, false);
        log::info!(
            "shop {}: consumer {consumer}'s session resolved by {}",
            self.shop,
            msg.by
        );
        let mut turn = self.turn(consumer, &msg.chat_id, step, now);
        turn.only_if = Some(state.code());
        turn.idle_before = msg.idle_before;
        Ok(Some(turn))
    }
}

impl ShopRouter {
    fn route_and_queue(&mut self, msg: RouteSend) {
        match self.route(msg) {
            Ok(turn) => self.queue.do_send(Enqueue(vec![Box::new(turn)])),
            Err((e, reply)) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// The agents as this router sees them; `None` if the shop does not exist.
    fn report(&self) -> Option<Vec<AgentReport>> {
        self.info.as_ref()?;
        let mut report: Vec<AgentReport> = self
            .agents
            .iter()
            .map(|(uid, a)| {
                let card = a.display();
                AgentReport {
                    uid: uid.0,
                    name: card.nickname,
                    avatar: self.presenter.url(&card.avatar),
                    role: AgentRole::from_supervisor(a.supervisor),
                    status: a.status,
                    online: a.status != AgentStatus::Offline,
                    connected: self.connected_here(*uid) || self.shared.connected.contains(uid),
                    open_sessions: self.load(*uid),
                }
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
        let was = self.routable(msg.uid);
        if msg.conns == 0 {
            self.presence.remove(&msg.uid);
        } else {
            self.presence.insert(msg.uid, msg.conns);
        }
        self.announce();
        if !was && self.routable(msg.uid) {
            self.drain(ctx);
        }
    }
}

impl Handler<AgentStatusSet> for ShopRouter {
    type Result = ();

    fn handle(&mut self, msg: AgentStatusSet, ctx: &mut Context<Self>) {
        if let Some(agent) = self.agents.get_mut(&msg.uid) {
            agent.status = msg.status;
        }
        self.announce();
        self.drain(ctx);
    }
}

impl Handler<ResolveChat> for ShopRouter {
    type Result = ();

    fn handle(&mut self, mut msg: ResolveChat, ctx: &mut Context<Self>) {
        let want = Want {
            consumer: self.consumer_of(&msg.chat_id),
            ..Want::default()
        };
        self.with_fresh_view(want, ctx, move |act, ctx| {
            let reply = msg.reply.take();
            match act.resolve(&msg) {
                Ok(Some(mut turn)) => {
                    turn.reply = reply;
                    act.queue.do_send(Enqueue(vec![Box::new(turn)]));
                    // An agent under capacity again may take a waiting consumer.
                    act.drain(ctx);
                }
                Ok(None) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(crate::protocol::ok(&())));
                    }
                }
                Err(e) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        });
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
            Ok(mut turn) => {
                turn.reply = Some(msg.reply);
                act.queue.do_send(Enqueue(vec![Box::new(turn)]));
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

impl Handler<SessionAgent> for ShopRouter {
    type Result = ResponseFuture<Option<(Option<UserId>, String)>>;

    fn handle(&mut self, msg: SessionAgent, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let want = Want {
            consumer: Some(msg.consumer),
            ..Want::default()
        };
        self.with_fresh_view(want, ctx, move |act, _| {
            let name = act.info.as_ref().map(|s| s.name.clone());
            let agent = act.convs.get(&msg.consumer).and_then(|c| c.state.agent());
            let _ = tx.send(name.map(|n| (agent, n)));
        });
        Box::pin(async move { rx.await.ok().flatten() })
    }
}
