//! PCI pieces for emulated PCI functions: the type-0 configuration space and the MSI
//! capability in it.

pub(crate) mod configuration;
pub(crate) mod msi;

pub(crate) use configuration::ConfigSpace;
