//! The customer-service conversation as a state machine (PROTOCOL.md §10): what a
//! consumer's or an agent's message, a queue hand-out, a transfer or a resolution does to
//! a conversation, and what must follow (events, auto replies, the queue moving). Pure:
//! the router supplies what it has decided (which agent, whether the shop is open), the
//! writes carry out the effects.

use crate::error::ChatError;
use crate::ids::UserId;
use crate::protocol::service::SessionState;

/// Where a conversation stands. `Idle` is both "resolved" and "never started": either
/// way the consumer's next message starts a new session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConvState {
    #[default]
    Idle,
    /// In the shop's queue; no agent has it.
    Waiting,
    /// The agent who has it.
    Open(UserId),
}

impl ConvState {
    /// The numbers in the database (`protocol::service::SessionState`).
    pub const IDLE: i32 = 0;
    pub const WAITING: i32 = 1;
    pub const OPEN: i32 = 2;

    /// Its number in the database.
    pub fn code(self) -> i32 {
        match self {
            ConvState::Idle => ConvState::IDLE,
            ConvState::Waiting => ConvState::WAITING,
            ConvState::Open(_) => ConvState::OPEN,
        }
    }

    /// From the database: the state number and the agent column.
    pub fn from_row(code: i32, agent: UserId) -> ConvState {
        match code {
            ConvState::WAITING => ConvState::Waiting,
            ConvState::OPEN if agent.0 > 0 => ConvState::Open(agent),
            _ => ConvState::Idle,
        }
    }

    /// Its name on the wire and in the admin API.
    pub fn name(self) -> &'static str {
        SessionState::from_code(self.code()).name()
    }

    /// As stored: the state and the agent who has it (0 if none).
    pub fn stored(self) -> (SessionState, UserId) {
        (
            SessionState::from_code(self.code()),
            self.agent().unwrap_or_default(),
        )
    }

    pub fn agent(self) -> Option<UserId> {
        match self {
            ConvState::Open(a) => Some(a),
            _ => None,
        }
    }
}

/// Why an agent was given a session (the `reason` of the 202 `assigned` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The agent who served this consumer last.
    Sticky,
    Random,
    /// Handed out of the queue.
    Queue,
    /// The agent wrote first, or claimed a waiting consumer.
    Agent,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Sticky => "sticky",
            Reason::Random => "random",
            Reason::Queue => "queue",
            Reason::Agent => "agent",
        }
    }
}

/// The router's choice of agent for a conversation that needs one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    pub agent: UserId,
    pub reason: Reason,
}

/// An automatic message from the shop (stored and pushed like an agent's, marked `auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoReply {
    Welcome,
    Offline,
}

impl AutoReply {
    /// Its bit in the conversation's `auto_sent` (what this session has already had).
    pub fn bit(self) -> i32 {
        match self {
            AutoReply::Welcome => 1,
            AutoReply::Offline => 2,
        }
    }
}

/// What the shop's settings and clock say, for auto replies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shop {
    pub has_welcome: bool,
    pub has_offline: bool,
    /// Inside the shop's working hours (always, without hours).
    pub open_now: bool,
}

/// What happens to a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The consumer wrote. `reachable`: the open session's agent still gets messages
    /// (connected, not offline). `pick`: the router's choice, asked for whenever the
    /// conversation needs an agent (None: nobody routable).
    ConsumerWrote { reachable: bool, pick: Option<Pick> },
    /// An agent of the shop wrote to the consumer.
    AgentWrote { agent: UserId },
    /// The queue hands the conversation to an agent.
    Handed(Pick),
    /// `service.transfer` to another agent.
    Transferred { to: UserId },
    /// `service.resolve` by an agent, or the sweep (`by` 0).
    Resolved { by: UserId },
}

/// What follows a transition, in the order it is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A new session starts (a new session id; auto replies sent so far are forgotten).
    NewSession,
    /// The agent gets 202 `assigned` (before any message of the session).
    Assigned(Pick),
    /// The agent gets what the conversation waited with.
    Backlog(UserId),
    /// The conversation joined the queue: the consumer learns its position, agents the length.
    EnterQueue,
    /// It left the queue: the consumer gets `served`, the others move up.
    LeaveQueue,
    Auto(AutoReply),
    /// 202 `transfer` to both agents.
    Transfer {
        from: Option<UserId>,
        to: UserId,
    },
    /// 202 `resolved` and `rating_request`, stored as event rows too.
    Resolve {
        by: UserId,
    },
}

/// The new state and what follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub state: ConvState,
    pub effects: Vec<Effect>,
}

impl Step {
    pub fn has(&self, effect: Effect) -> bool {
        self.effects.contains(&effect)
    }

    pub fn new_session(&self) -> bool {
        self.has(Effect::NewSession)
    }

    /// The auto reply this step sends, if any.
    pub fn auto_reply(&self) -> Option<AutoReply> {
        self.effects.iter().find_map(|e| match e {
            Effect::Auto(a) => Some(*a),
            _ => None,
        })
    }
}

/// The transition: `state` (with the auto replies its session has had, `auto_sent`)
/// under `event`. Refuses a transfer or hand-out of a conversation nobody has.
pub fn step(state: ConvState, auto_sent: i32, event: Event, shop: Shop) -> Result<Step, ChatError> {
    use ConvState::*;
    use Effect::*;
    let mut fx = Vec::new();
    let state = match (state, event) {
        (Idle, Event::ConsumerWrote { pick, .. }) => {
            fx.push(NewSession);
            let next = enter(pick, &mut fx);
            // The offline message replaces the welcome when the session waits or the shop is closed.
            let auto = match next {
                Waiting => shop.has_offline.then_some(AutoReply::Offline),
                _ if !shop.open_now && shop.has_offline => Some(AutoReply::Offline),
                _ => shop.has_welcome.then_some(AutoReply::Welcome),
            };
            fx.extend(auto.map(Effect::Auto));
            next
        }
        (Waiting, Event::ConsumerWrote { pick, .. }) => {
            let next = match pick {
                Some(p) => {
                    fx.extend([Assigned(p), Backlog(p.agent), LeaveQueue]);
                    Open(p.agent)
                }
                None => Waiting,
            };
            offline_if_closed(auto_sent, shop, &mut fx);
            next
        }
        (Open(agent), Event::ConsumerWrote { reachable, pick }) => {
            let next = match reachable {
                true => Open(agent),
                false => enter(pick, &mut fx),
            };
            if next == Waiting && shop.has_offline && auto_sent & AutoReply::Offline.bit() == 0 {
                fx.push(Auto(AutoReply::Offline));
            } else {
                offline_if_closed(auto_sent, shop, &mut fx);
            }
            next
        }
        (Idle, Event::AgentWrote { agent }) => {
            fx.extend([
                NewSession,
                Assigned(Pick {
                    agent,
                    reason: Reason::Agent,
                }),
            ]);
            Open(agent)
        }
        (Waiting, Event::AgentWrote { agent }) => {
            fx.extend([
                Assigned(Pick {
                    agent,
                    reason: Reason::Agent,
                }),
                LeaveQueue,
            ]);
            Open(agent)
        }
        (Open(_), Event::AgentWrote { agent }) => Open(agent),
        (Waiting, Event::Handed(p)) => {
            fx.extend([Assigned(p), Backlog(p.agent), LeaveQueue]);
            Open(p.agent)
        }
        (other, Event::Handed(_)) => other,
        (Open(from), Event::Transferred { to }) => {
            fx.push(Transfer {
                from: Some(from),
                to,
            });
            Open(to)
        }
        (Waiting, Event::Transferred { to }) => {
            fx.extend([Transfer { from: None, to }, Backlog(to), LeaveQueue]);
            Open(to)
        }
        (Idle, Event::Transferred { .. }) => return Err(ChatError::NotFound),
        (Open(_), Event::Resolved { by }) => {
            fx.push(Resolve { by });
            Idle
        }
        (Waiting, Event::Resolved { by }) => {
            fx.extend([LeaveQueue, Resolve { by }]);
            Idle
        }
        // Resolving what is already resolved changes nothing (a retried request).
        (Idle, Event::Resolved { .. }) => Idle,
    };
    Ok(Step { state, effects: fx })
}

/// A conversation that needs an agent: the pick's, else the queue.
fn enter(pick: Option<Pick>, fx: &mut Vec<Effect>) -> ConvState {
    match pick {
        Some(p) => {
            fx.push(Effect::Assigned(p));
            ConvState::Open(p.agent)
        }
        None => {
            fx.push(Effect::EnterQueue);
            ConvState::Waiting
        }
    }
}

/// A consumer writing outside working hours hears the offline message, once a session.
fn offline_if_closed(auto_sent: i32, shop: Shop, fx: &mut Vec<Effect>) {
    if !shop.open_now && shop.has_offline && auto_sent & AutoReply::Offline.bit() == 0 {
        fx.push(Effect::Auto(AutoReply::Offline));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConvState::*;
    use Effect::*;

    const A: UserId = UserId(100);
    const B: UserId = UserId(101);
    const OPEN: Shop = Shop {
        has_welcome: true,
        has_offline: true,
        open_now: true,
    };
    const CLOSED: Shop = Shop {
        open_now: false,
        ..OPEN
    };
    const SILENT: Shop = Shop {
        has_welcome: false,
        has_offline: false,
        open_now: true,
    };

    fn pick(agent: UserId, reason: Reason) -> Option<Pick> {
        Some(Pick { agent, reason })
    }

    fn consumer(reachable: bool, p: Option<Pick>) -> Event {
        Event::ConsumerWrote { reachable, pick: p }
    }

    fn go(s: ConvState, sent: i32, e: Event, shop: Shop) -> (ConvState, Vec<Effect>) {
        let step = step(s, sent, e, shop).unwrap();
        (step.state, step.effects)
    }

    #[test]
    fn a_consumer_starts_a_session_with_the_picked_agent_and_a_welcome() {
        let p = pick(A, Reason::Random);
        assert_eq!(
            go(Idle, 0, consumer(false, p), OPEN),
            (
                Open(A),
                vec![NewSession, Assigned(p.unwrap()), Auto(AutoReply::Welcome)]
            )
        );
        assert_eq!(
            go(Idle, 3, consumer(false, p), SILENT),
            (Open(A), vec![NewSession, Assigned(p.unwrap())]),
            "no welcome configured, none sent; old bits do not matter to a new session"
        );
    }

    #[test]
    fn with_nobody_routable_the_session_waits_and_the_offline_message_replaces_the_welcome() {
        assert_eq!(
            go(Idle, 0, consumer(false, None), OPEN),
            (
                Waiting,
                vec![NewSession, EnterQueue, Auto(AutoReply::Offline)]
            )
        );
        assert_eq!(
            go(Idle, 0, consumer(false, None), SILENT),
            (Waiting, vec![NewSession, EnterQueue])
        );
    }

    #[test]
    fn outside_working_hours_the_offline_message_comes_once_a_session() {
        let p = pick(A, Reason::Sticky);
        assert_eq!(
            go(Idle, 0, consumer(false, p), CLOSED),
            (
                Open(A),
                vec![NewSession, Assigned(p.unwrap()), Auto(AutoReply::Offline)]
            )
        );
        assert_eq!(
            go(Open(A), 2, consumer(true, None), CLOSED),
            (Open(A), vec![])
        );
        assert_eq!(
            go(Open(A), 1, consumer(true, None), CLOSED),
            (Open(A), vec![Auto(AutoReply::Offline)]),
            "a welcome earlier in the session does not stop it"
        );
        assert_eq!(
            go(Open(A), 1, consumer(true, None), OPEN),
            (Open(A), vec![])
        );
    }

    #[test]
    fn an_open_session_keeps_its_reachable_agent_and_is_rerouted_otherwise() {
        assert_eq!(
            go(Open(A), 1, consumer(true, None), OPEN),
            (Open(A), vec![])
        );
        let p = pick(B, Reason::Random);
        assert_eq!(
            go(Open(A), 1, consumer(false, p), OPEN),
            (Open(B), vec![Assigned(p.unwrap())])
        );
        assert_eq!(
            go(Open(A), 1, consumer(false, None), OPEN),
            (Waiting, vec![EnterQueue, Auto(AutoReply::Offline)])
        );
        assert_eq!(
            go(Open(A), 2, consumer(false, None), OPEN),
            (Waiting, vec![EnterQueue]),
            "at most once per session"
        );
    }

    #[test]
    fn a_waiting_consumer_who_writes_again_is_served_when_someone_is_free() {
        assert_eq!(
            go(Waiting, 2, consumer(false, None), OPEN),
            (Waiting, vec![])
        );
        let p = pick(A, Reason::Queue);
        assert_eq!(
            go(Waiting, 2, consumer(false, p), OPEN),
            (Open(A), vec![Assigned(p.unwrap()), Backlog(A), LeaveQueue])
        );
    }

    #[test]
    fn an_agent_who_writes_opens_or_claims_a_session_without_a_welcome() {
        let mine = Pick {
            agent: A,
            reason: Reason::Agent,
        };
        assert_eq!(
            go(Idle, 0, Event::AgentWrote { agent: A }, OPEN),
            (Open(A), vec![NewSession, Assigned(mine)])
        );
        assert_eq!(
            go(Waiting, 2, Event::AgentWrote { agent: A }, OPEN),
            (Open(A), vec![Assigned(mine), LeaveQueue])
        );
        assert_eq!(
            go(Open(B), 0, Event::AgentWrote { agent: A }, OPEN),
            (Open(A), vec![])
        );
    }

    #[test]
    fn the_queue_hands_out_only_waiting_conversations() {
        let p = Pick {
            agent: A,
            reason: Reason::Sticky,
        };
        assert_eq!(
            go(Waiting, 0, Event::Handed(p), OPEN),
            (Open(A), vec![Assigned(p), Backlog(A), LeaveQueue])
        );
        assert_eq!(go(Open(B), 0, Event::Handed(p), OPEN), (Open(B), vec![]));
        assert_eq!(go(Idle, 0, Event::Handed(p), OPEN), (Idle, vec![]));
    }

    #[test]
    fn transfers_move_open_and_waiting_conversations_only() {
        assert_eq!(
            go(Open(A), 0, Event::Transferred { to: B }, OPEN),
            (
                Open(B),
                vec![Transfer {
                    from: Some(A),
                    to: B
                }]
            )
        );
        assert_eq!(
            go(Waiting, 0, Event::Transferred { to: B }, OPEN),
            (
                Open(B),
                vec![Transfer { from: None, to: B }, Backlog(B), LeaveQueue]
            )
        );
        assert_eq!(
            step(Idle, 0, Event::Transferred { to: B }, OPEN),
            Err(ChatError::NotFound)
        );
    }

    #[test]
    fn resolving_ends_the_session_once() {
        let by = Event::Resolved { by: A };
        assert_eq!(go(Open(A), 0, by, OPEN), (Idle, vec![Resolve { by: A }]));
        assert_eq!(
            go(Waiting, 0, by, OPEN),
            (Idle, vec![LeaveQueue, Resolve { by: A }])
        );
        assert_eq!(go(Idle, 0, by, OPEN), (Idle, vec![]));
    }

    #[test]
    fn states_keep_their_numbers() {
        for s in [Idle, Waiting, Open(A)] {
            assert_eq!(ConvState::from_row(s.code(), A), s);
            assert_eq!(
                SessionState::from_name(s.name()).map(|s| s.code()),
                Some(s.code())
            );
        }
        assert_eq!(ConvState::from_row(2, UserId(0)), Idle);
    }
}
