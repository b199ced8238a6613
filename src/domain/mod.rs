//! Pure decisions and shapes, with no actor and no I/O: which agent gets a conversation,
//! what a message or a resolution does to a customer-service session, whether a shop is
//! open, and how a stored message looks to whoever receives it. The actors and the HTTP routes
//! call these; they are unit-tested on their own.

pub mod choice;
pub mod hours;
pub mod moderation;
pub mod present;
pub mod session;
pub mod stats;

pub use present::Presenter;
