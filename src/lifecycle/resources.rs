//! Resources registered during a generation, released in reverse order at
//! its final cleanup ([L6.4](crate::contract#L6.4)).

use super::Lifecycle;
use crate::resource::{Registered, release_resources};
use crate::{BoxError, Error, Provider, Resource};

impl<P: Provider> Lifecycle<P> {
    /// Registers a resource for the current generation, released in reverse
    /// order of registration at the final cleanup ([L6.4](crate::contract#L6.4)).
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active; the resource is then released
    /// at once (it would otherwise be lost).
    pub fn register_resource(&self, resource: impl Resource + 'static) -> Result<(), Error> {
        self.register(Registered::new(Box::new(resource)))
    }

    /// Registers a closure as a resource, named `name` in the report.
    ///
    /// # Errors
    ///
    /// As [`register_resource`](Lifecycle::register_resource).
    pub fn register_resource_fn<F>(&self, name: impl Into<String>, release: F) -> Result<(), Error>
    where
        F: FnOnce() -> Result<(), BoxError> + Send + 'static,
    {
        self.register(Registered::from_fn(name, release))
    }

    fn register(&self, r: Registered) -> Result<(), Error> {
        self.raw.register(r).map_err(|(refused, why)| {
            release_resources(vec![refused]);
            Error::NotInitialised(why)
        })
    }
}
