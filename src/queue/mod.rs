//! The virtual waiting room. Admission tokens live here: the signed JWT a buyer gets when
//! the waiting room lets them in, which hold and checkout demand for on-sales that have a
//! waiting room. (The queue actor that admits buyers in batches builds on them.)

pub mod admission;
