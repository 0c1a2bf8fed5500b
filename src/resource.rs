//! Resources: what a provider frees at the final cleanup, and their release
//! in reverse order of registration ([L6.4](crate::contract#L6.4)).

use crate::BoxError;
use crate::hook::hook;
use crate::report::ResourceReport;

/// Something the provider holds for one generation and must free at the final
/// cleanup: a table, a worker pool, a registration with the OS.
///
/// `release` consumes the resource, so it runs exactly once. Closures can be
/// registered with [`Registrar::register_fn`](crate::Registrar::register_fn) or
/// [`Lifecycle::register_resource_fn`](crate::Lifecycle::register_resource_fn).
///
/// ```
/// use provider_lifecycle::{BoxError, Resource};
/// struct Listener { port: u16 }
/// impl Resource for Listener {
///     fn name(&self) -> &str { "listener" }
///     fn release(self: Box<Self>) -> Result<(), BoxError> {
///         // close the OS handle here; an error is reported, not fatal
///         let _ = self.port;
///         Ok(())
///     }
/// }
/// # let _ = Listener { port: 80 };
/// ```
pub trait Resource: Send {
    /// A name for the drain report.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Frees the resource.
    ///
    /// # Errors
    ///
    /// A failure (or a panic) is recorded in the report; the other resources
    /// are still released.
    fn release(self: Box<Self>) -> Result<(), BoxError>;
}

/// A resource made of a closure (its name lives in `Registered`).
struct FnResource<F> {
    release: F,
}

impl<F> Resource for FnResource<F>
where
    F: FnOnce() -> Result<(), BoxError> + Send,
{
    fn release(self: Box<Self>) -> Result<(), BoxError> {
        (self.release)()
    }
}

/// A registered resource with its report name taken at registration.
///
/// Padded to the size of its [`ResourceReport`]: the release then turns the
/// generation's `Vec<Registered>` into the report's `Vec<ResourceReport>` in
/// place (std's in-place `collect`), so the final cleanup allocates (and
/// page-faults) nothing for its resource lines.
pub(crate) struct Registered {
    pub(crate) name: String,
    pub(crate) resource: Box<dyn Resource>,
    _room: [usize; 2],
}

const _: () = assert!(
    std::mem::size_of::<Registered>() == std::mem::size_of::<ResourceReport>()
        && std::mem::align_of::<Registered>() == std::mem::align_of::<ResourceReport>()
);

impl Registered {
    pub(crate) fn new(resource: Box<dyn Resource>) -> Registered {
        let name = crate::hook::call(|| resource.name().to_owned())
            .unwrap_or_else(|_| "<name panicked>".to_owned());
        Registered {
            name,
            resource,
            _room: [0; 2],
        }
    }

    pub(crate) fn from_fn<F>(name: impl Into<String>, release: F) -> Registered
    where
        F: FnOnce() -> Result<(), BoxError> + Send + 'static,
    {
        Registered {
            name: name.into(),
            resource: Box::new(FnResource { release }),
            _room: [0; 2],
        }
    }
}

/// Releases resources in reverse order of registration; a failure or panic is
/// recorded and does not stop the others ([L6.4](crate::contract#L6.4)).
pub(crate) fn release_resources(mut resources: Vec<Registered>) -> Vec<ResourceReport> {
    // Reversed in place first: `rev()` would defeat the in-place collect.
    resources.reverse();
    resources
        .into_iter()
        .map(|r| ResourceReport {
            outcome: hook(move || r.resource.release()),
            name: r.name,
        })
        .collect()
}

/// [L16](crate::contract#L16): the resources of a generation whose guard
/// wait gave up stay as they are (leaked, never released); each still gets
/// its line, in the order a release would have taken.
pub(crate) fn abandon_resources(mut resources: Vec<Registered>) -> Vec<ResourceReport> {
    resources.reverse();
    resources
        .into_iter()
        .map(|r| {
            let name = r.name.clone();
            std::mem::forget(r);
            ResourceReport {
                name,
                outcome: crate::HookOutcome::Abandoned,
            }
        })
        .collect()
}
