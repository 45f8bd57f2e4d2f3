//! How a command ends: a [`Failure`] carries the error and the exit code it deserves (2
//! for the user's mistakes, 1 when the work failed).

/// Exit code for bad configuration or usage.
const EXIT_USAGE: u8 = 2;
/// Exit code when the work itself failed.
pub const EXIT_FAILURE: u8 = 1;

/// An error with the exit code it should end the process with.
#[derive(Debug)]
pub struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// A library error as the exit code it deserves (see the module docs): 2 for the
    /// user's mistakes, except a destination another run holds (1: wait and retry); 1
    /// otherwise.
    pub fn of(e: sluice::Error) -> Self {
        if is_users(&e) {
            Failure::usage(anyhow::anyhow!(e.message))
        } else {
            Failure::failed(anyhow::anyhow!(e.message))
        }
    }

    /// Bad input: exit code 2.
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure { code: EXIT_USAGE, error: error.into() }
    }

    /// The work failed: exit code 1.
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        Failure { code: EXIT_FAILURE, error: error.into() }
    }
}

/// Whether `e` is the user's to fix before anything can work: exit code 2. Another run
/// holding the destination is the user's to resolve too, but no mistake: the same command
/// succeeds once it ends (exit code 1).
pub fn is_users(e: &sluice::Error) -> bool {
    e.kind == sluice::Kind::User && !e.is_busy()
}
