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
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// struct Pool;
    /// impl Resource for Pool {
    ///     fn name(&self) -> &str { "pool" }
    ///     fn release(self: Box<Self>) -> Result<(), BoxError> { Ok(()) }
    /// }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// l.register_resource(Pool)?;
    /// let report = l.cleanup()?.into_report().unwrap();
    /// assert_eq!(report.resources[0].name, "pool"); // released, and reported
    /// # Ok::<(), Error>(())
    /// ```
    pub fn register_resource(&self, resource: impl Resource + 'static) -> Result<(), Error> {
        self.register(Registered::new(Box::new(resource)))
    }

    /// Registers a closure as a resource, named `name` in the report.
    ///
    /// # Errors
    ///
    /// As [`register_resource`](Lifecycle::register_resource).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// l.register_resource_fn("timer", || Ok(()))?;
    /// l.register_resource_fn("socket table", || Ok(()))?;
    /// let report = l.cleanup()?.into_report().unwrap();
    /// // Released in reverse order of registration.
    /// let names: Vec<_> = report.resources.iter().map(|r| r.name.as_str()).collect();
    /// assert_eq!(names, ["socket table", "timer"]);
    /// # Ok::<(), Error>(())
    /// ```
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
