//! Messages: the types that travel on sessions, each under a stable, declared name.
//!
//! Every message carries its [`Message::NAME`] on the wire, so a receiver can tell the types
//! apart ([`Incoming::is`](crate::Incoming::is)) and a process written in another language can
//! produce and recognise them. The name is chosen by the application, not derived from the Rust
//! type: it stays the same across compiler versions and module moves, and two types named `Xy` in
//! different modules can be told apart by giving them different names.
//!
//! ```
//! use layer_cake::Message;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Xy { x: usize, y: usize }
//! layer_cake::message!(Xy);                       // travels as "Xy"
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Table(Vec<Vec<f64>>);
//! layer_cake::message!(Table = "demo.Table");      // travels as "demo.Table"
//!
//! assert_eq!(<Xy as Message>::NAME, "Xy");
//! assert_eq!(Table::NAME, "demo.Table");
//! ```
//!
//! A few standard types are messages already, under names any language can produce: `string`
//! ([`String`], `str`), `bool`, `int` (every integer type), `float` (`f32`, `f64`), `list` (a
//! [`Vec`] or slice of any message), `unit` (`()`), and `json` ([`serde_json::Value`]). The
//! naming rule for other languages is in `docs/protocol.md`.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A type that travels on a session under a stable name. Implement it with [`message!`](crate::message!)
/// (`message!(Xy)` or `message!(Xy = "name")`), or by hand.
pub trait Message: Serialize {
    /// The name the message travels under: 1 to 256 characters, no whitespace or control
    /// characters. Dotted names (`billing.Invoice`) keep applications' names apart.
    const NAME: &'static str;
}

/// A message that can also be received ([`Incoming::decode`](crate::Incoming::decode),
/// replies to [`Session::request`](crate::Session::request)).
pub trait Received: Message + DeserializeOwned {}
impl<T: Message + DeserializeOwned> Received for T {}

/// Declares one or more types as [`Message`]s: `message!(Xy)` travels as `"Xy"`,
/// `message!(Xy = "geometry.Xy")` as `"geometry.Xy"`.
#[macro_export]
macro_rules! message {
    ($($ty:ty $(= $name:literal)?),+ $(,)?) => {
        $( $crate::message!(@one $ty $(= $name)?); )+
    };
    (@one $ty:ty = $name:literal) => {
        impl $crate::Message for $ty {
            const NAME: &'static str = $name;
        }
    };
    (@one $ty:ty) => {
        impl $crate::Message for $ty {
            const NAME: &'static str = stringify!($ty);
        }
    };
}

macro_rules! standard {
    ($name:literal: $($ty:ty),+) => {
        $( impl Message for $ty { const NAME: &'static str = $name; } )+
    };
}

standard!("string": String, str);
standard!("bool": bool);
standard!("int": i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
standard!("float": f32, f64);
standard!("unit": ());
standard!("json": serde_json::Value);

impl<T: Message> Message for Vec<T> {
    const NAME: &'static str = "list";
}

impl<T: Message> Message for [T] {
    const NAME: &'static str = "list";
}

impl<T: Message + ?Sized> Message for &T {
    const NAME: &'static str = T::NAME;
}

impl<T: Message + ?Sized> Message for Box<T> {
    const NAME: &'static str = T::NAME;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Xy;
    crate::message!(Xy);

    mod other {
        #[derive(serde::Serialize)]
        pub struct Xy;
        crate::message!(Xy = "other.Xy");
    }

    #[test]
    fn names_are_declared_not_derived() {
        assert_eq!(Xy::NAME, "Xy");
        assert_eq!(other::Xy::NAME, "other.Xy");
        assert_eq!(<Vec<Vec<f64>>>::NAME, "list");
        assert_eq!(<&str>::NAME, "string");
        assert_eq!(String::NAME, "string");
        assert_eq!(u8::NAME, "int");
    }
}
