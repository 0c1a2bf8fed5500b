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
pub(crate) struct Registered {
    pub(crate) name: String,
    pub(crate) resource: Box<dyn Resource>,
}

impl Registered {
    pub(crate) fn new(resource: Box<dyn Resource>) -> Registered {
        let name = crate::hook::call(|| resource.name().to_owned())
            .unwrap_or_else(|_| "<name panicked>".to_owned());
        Registered { name, resource }
    }

    pub(crate) fn from_fn<F>(name: impl Into<String>, release: F) -> Registered
    where
        F: FnOnce() -> Result<(), BoxError> + Send + 'static,
    {
        Registered {
            name: name.into(),
            resource: Box::new(FnResource { release }),
        }
    }
}

/// Releases resources in reverse order of registration; a failure or panic is
/// recorded and does not stop the others ([L6.4](crate::contract#L6.4)).
pub(crate) fn release_resources(resources: Vec<Registered>) -> Vec<ResourceReport> {
    resources
        .into_iter()
        .rev()
        .map(|r| ResourceReport {
            outcome: hook(move || r.resource.release()),
            name: r.name,
        })
        .collect()
}
