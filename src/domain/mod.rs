//! Pure decisions and shapes, with no actor and no I/O: which agent gets a conversation,
//! and how a stored message looks to whoever receives it. The actors and the HTTP routes
//! call these; they are unit-tested on their own.

pub mod choice;
pub mod present;

pub use present::Presenter;
