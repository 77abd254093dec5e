//! The domain's closed sets as database columns: each is stored as its lowercase text and
//! decoded at the store boundary, so no status, kind or role crosses it as a `String`. A
//! spelling the enum does not know (a row written by a newer version, or by hand) fails
//! the query with an error naming the value and the allowed ones, never a panic.

use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::domain::{
    Direction, MessageKind, ParticipantRole, Priority, Role, TaskPriority, TaskStatus, TicketStatus,
};

macro_rules! text_column {
    ($($name:ident),+ $(,)?) => {$(
        impl Type<Any> for $name {
            fn type_info() -> AnyTypeInfo {
                <str as Type<Any>>::type_info()
            }
        }

        impl<'q> Encode<'q, Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, Any>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Any> for $name {
            fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<'r, Any>>::decode(value)?;
                Ok($name::from_stored(text)?)
            }
        }
    )+};
}

text_column!(
    TicketStatus,
    Priority,
    TaskPriority,
    TaskStatus,
    Direction,
    MessageKind,
    Role,
    ParticipantRole
);
