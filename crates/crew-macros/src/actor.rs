//! The expansion of `#[crew::actor]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, ReturnType, Token, Type};

struct ActorMethod {
    ident: syn::Ident,
    exclusive: bool,
    stream: Option<Type>,
    arguments: Vec<Type>,
    result: TokenStream,
}

/// The attribute's arguments: `stateless`, `name = "stable::Name"`, and the reference's
/// visibility, bare (`pub`, `pub(crate)`) or as `vis = "pub"`.
pub(crate) struct Arguments {
    name: Option<syn::LitStr>,
    stateless: bool,
    visibility: Option<syn::Visibility>,
}

impl Parse for Arguments {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut arguments = Arguments {
            name: None,
            stateless: false,
            visibility: None,
        };
        while !input.is_empty() {
            let visibility_span = input.span();
            let visibility = if input.peek(Token![pub]) {
                Some(input.parse::<syn::Visibility>()?)
            } else {
                let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
                match key.to_string().as_str() {
                    "stateless" => {
                        arguments.stateless = true;
                        None
                    }
                    "name" => {
                        input.parse::<Token![=]>()?;
                        let value: syn::LitStr = input.parse()?;
                        if value.value().is_empty() {
                            return Err(syn::Error::new(
                                value.span(),
                                "an actor name cannot be empty",
                            ));
                        }
                        arguments.name = Some(value);
                        None
                    }
                    "vis" => {
                        input.parse::<Token![=]>()?;
                        let value: syn::LitStr = input.parse()?;
                        Some(value.parse::<syn::Visibility>().map_err(|_| {
                            syn::Error::new(
                                value.span(),
                                "`vis` takes a visibility: \"pub\", \"pub(crate)\", \
                                 \"pub(super)\" (or write it bare: #[crew::actor(pub)])",
                            )
                        })?)
                    }
                    _ => {
                        return Err(syn::Error::new(
                            key.span(),
                            "#[crew::actor] takes only `stateless`, `name = \"stable::Name\"` \
                             and the reference's visibility (`pub`, `pub(crate)`, or \
                             `vis = \"pub\"`)",
                        ))
                    }
                }
            };
            if let Some(visibility) = visibility {
                if arguments.visibility.is_some() {
                    return Err(syn::Error::new(
                        visibility_span,
                        "#[crew::actor]: the reference's visibility is given twice",
                    ));
                }
                arguments.visibility = Some(visibility);
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(arguments)
    }
}

pub(crate) fn expand(block: &mut ItemImpl, arguments: Arguments) -> syn::Result<TokenStream> {
    let Arguments {
        name,
        stateless,
        visibility,
    } = arguments;
    let name = name.as_ref();
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[crew::actor] goes on the type's own impl block (`impl Counter { .. }`), not on a \
             trait impl",
        ));
    }
    if !block.generics.params.is_empty() || block.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            block.generics.span(),
            "#[crew::actor] cannot be generic: a worker process finds the actor type by one \
             stable name; write a non-generic actor per type",
        ));
    }
    let self_type = block.self_ty.clone();
    let type_ident = match &*self_type {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .map(|segment| segment.ident.clone())
            .ok_or_else(|| syn::Error::new(self_type.span(), "expected a type name"))?,
        other => {
            return Err(syn::Error::new(
                other.span(),
                "#[crew::actor] needs a named type (`impl Counter { .. }`)",
            ))
        }
    };
    let ref_ident = format_ident!("{}Ref", type_ident);

    let mut constructor: Option<Vec<Type>> = None;
    // The constructor's visibility and signature span: the reference's default visibility,
    // and where a visibility mismatch (E0446) is reported.
    let mut constructor_visibility = syn::Visibility::Inherited;
    let mut constructor_span = Span::call_site();
    let mut has_on_start = false;
    let mut has_on_stop = false;
    let mut methods = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        let stream = take_stream_attribute(function);
        let ident = function.sig.ident.clone();
        let receiver = function.sig.receiver().cloned();
        match (ident.to_string().as_str(), &receiver) {
            ("new", None) => {
                constructor = Some(argument_types(function)?);
                constructor_visibility = function.vis.clone();
                constructor_span = function.sig.span();
                continue;
            }
            ("on_start", Some(_)) => {
                has_on_start = true;
                continue;
            }
            ("on_stop", Some(_)) => {
                has_on_stop = true;
                continue;
            }
            (_, None) => continue,
            _ => {}
        }
        let receiver = receiver.expect("checked above");
        if !function.sig.generics.params.is_empty() || function.sig.generics.where_clause.is_some()
        {
            return Err(syn::Error::new(
                function.sig.generics.span(),
                format!(
                    "actor method `{ident}` cannot be generic: calls reach an actor as \
                     messages dispatched to one concrete method; write one method per type"
                ),
            ));
        }
        if let Some(asyncness) = &function.sig.asyncness {
            return Err(syn::Error::new(
                asyncness.span(),
                format!(
                    "actor method `{ident}` cannot be async: the actor runs it on its own \
                     thread; every call already returns an awaitable TaskHandle"
                ),
            ));
        }
        if receiver.reference.is_none() || receiver.colon_token.is_some() {
            return Err(syn::Error::new(
                receiver.span(),
                format!("actor method `{ident}` must take `&self` or `&mut self`"),
            ));
        }
        let exclusive = receiver.mutability.is_some();
        if exclusive && stateless {
            return Err(syn::Error::new(
                receiver.span(),
                format!(
                    "a stateless actor cannot have `&mut self` methods (`{ident}`): its copies \
                     share one mailbox and no state; take `&self`, or drop `stateless`"
                ),
            ));
        }
        let result = match &function.sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        };
        let stream = if stream {
            Some(stream_item(&function.sig.output).ok_or_else(|| {
                syn::Error::new(
                    function.sig.output.span(),
                    format!(
                        "#[stream] method `{ident}` must return `impl Iterator<Item = T> + \
                         Send + 'static` (or a `Box<dyn Iterator<Item = T> + Send>`)"
                    ),
                )
            })?)
        } else {
            None
        };
        methods.push(ActorMethod {
            ident,
            exclusive,
            stream,
            arguments: argument_types(function)?,
            result,
        });
    }
    check_generated_names(&methods)?;
    let Some(constructor) = constructor else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[crew::actor] needs a constructor in the block: `fn new(args..) -> Self` (its \
             arguments are serde values, so the actor can be built in another process)",
        ));
    };

    let visibility = visibility.unwrap_or(constructor_visibility);
    // Spanned at `fn new` so that "private type `CounterRef` in public interface" points the
    // user at the constructor whose visibility the reference follows.
    let ref_type = quote_spanned!(constructor_span=> type Ref = #ref_ident;);
    // The mirror case (a private type, `pub fn new`): "private type `Counter` in public
    // interface", also at `fn new`.
    let deref_target =
        quote_spanned!(constructor_span=> type Target = ::crew::actor::ActorRef<#self_type>;);

    let (args_type, construct) = match constructor.len() {
        0 => (quote!(()), quote!(<#self_type>::new())),
        1 => (quote!(#(#constructor)*), quote!(<#self_type>::new(args))),
        n => {
            let names: Vec<_> = (0..n).map(|i| format_ident!("__crew_a{}", i)).collect();
            (
                quote!((#(#constructor,)*)),
                quote!({ let (#(#names,)*) = args; <#self_type>::new(#(#names),*) }),
            )
        }
    };
    let registered_name = match name {
        Some(name) => quote!(#name),
        None => {
            let type_string = type_ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #type_string))
        }
    };
    let on_start = has_on_start.then(|| {
        quote! {
            fn on_start(&mut self) -> ::core::result::Result<(), ::std::string::String> {
                ::crew::__private::StartResult::into_start_result(<#self_type>::on_start(self))
            }
        }
    });
    let on_stop = has_on_stop.then(|| {
        quote! {
            fn on_stop(&mut self) {
                <#self_type>::on_stop(self)
            }
        }
    });

    let mut ref_methods = Vec::new();
    let mut table = Vec::new();
    for (index, method) in methods.iter().enumerate() {
        let index = index as u32;
        let ident = &method.ident;
        let name_string = ident.to_string();
        let names: Vec<_> = (0..method.arguments.len())
            .map(|i| format_ident!("__crew_a{}", i))
            .collect();
        let types = &method.arguments;
        let tuple_type = quote!((#(#types,)*));
        let tuple_pattern = quote!((#(#names,)*));
        let parameters = quote!(#(#names: #types),*);
        let receiver = if method.exclusive {
            quote!(&mut #self_type)
        } else {
            quote!(&#self_type)
        };
        let doc = format!("Calls [`{type_ident}::{ident}`] on the actor.");
        let result = &method.result;
        if let Some(item) = &method.stream {
            let ask = if method.exclusive {
                quote!(ask_stream)
            } else {
                quote!(ask_stream_shared)
            };
            let variant = if method.exclusive {
                quote!(ExclusiveStream)
            } else {
                quote!(SharedStream)
            };
            ref_methods.push(quote! {
                #[doc = #doc]
                pub fn #ident(&self, #parameters) -> ::crew::actor::ActorStream<#item> {
                    self.0.#ask(#index, #tuple_pattern,
                        |__crew_actor: #receiver, #tuple_pattern: #tuple_type| __crew_actor.#ident(#(#names),*))
                }
            });
            table.push(quote! {
                ::crew::actor::Method {
                    name: #name_string,
                    argument: ::core::any::type_name::<#tuple_type>,
                    result: ::core::any::type_name::<#item>,
                    call: ::crew::actor::MethodCall::#variant(|__crew_actor, __crew_input| {
                        let #tuple_pattern: #tuple_type = ::crew::task::codec::decode(__crew_input)
                            .map_err(|__crew_error| ::std::format!("the arguments of method `{}`: {}", #name_string, __crew_error))?;
                        ::core::result::Result::Ok(::crew::actor::__private::encode_items(__crew_actor.#ident(#(#names),*)))
                    }),
                }
            });
            continue;
        }
        let (ask, tell, tell_async, try_ask, ask_async, variant) = if method.exclusive {
            (
                quote!(ask),
                quote!(tell),
                quote!(tell_async),
                quote!(try_ask),
                quote!(ask_async),
                quote!(Exclusive),
            )
        } else {
            (
                quote!(ask_shared),
                quote!(tell_shared),
                quote!(tell_shared_async),
                quote!(try_ask_shared),
                quote!(ask_shared_async),
                quote!(Shared),
            )
        };
        let async_ident = format_ident!("{}_async", ident);
        let async_doc = format!(
            "Calls [`{type_ident}::{ident}`] from async code: awaits room in a full mailbox (never blocking the runtime's thread), then the result.\n\n# Errors\nThe call's failure, or why the actor cannot be called."
        );
        let tell_ident = format_ident!("tell_{}", ident);
        let tell_async_ident = format_ident!("tell_{}_async", ident);
        let tell_async_doc = format!(
            "Sends a call of [`{type_ident}::{ident}`] from async code without waiting for its result: awaits room in a full mailbox (never blocking the runtime's thread) and returns once the call is queued.\n\n# Errors\nWhy the call could not be queued."
        );
        let try_ident = format_ident!("try_{}", ident);
        let tell_doc = format!(
            "Sends a call of [`{type_ident}::{ident}`] without waiting for its result (blocks while the mailbox is full)."
        );
        let try_doc = format!(
            "Calls [`{type_ident}::{ident}`] if the mailbox has room, never blocking.\n\n# Errors\n`ActorError::Full` when the mailbox is full; why the actor cannot be called."
        );
        let tell_errors = "\n\n# Errors\nWhy the call could not be queued.";
        let tell_doc = format!("{tell_doc}{tell_errors}");
        let run = quote!(|__crew_actor: #receiver, #tuple_pattern: #tuple_type| __crew_actor.#ident(#(#names),*));
        ref_methods.push(quote! {
            #[doc = #doc]
            pub fn #ident(&self, #parameters) -> ::crew::TaskHandle<#result> {
                self.0.#ask(#index, #tuple_pattern, #run)
            }
            #[doc = #tell_doc]
            pub fn #tell_ident(&self, #parameters) -> ::core::result::Result<(), ::crew::actor::ActorError> {
                self.0.#tell(#index, #tuple_pattern, #run)
            }
            #[doc = #tell_async_doc]
            pub fn #tell_async_ident(&self, #parameters) -> impl ::core::future::Future<Output = ::core::result::Result<(), ::crew::actor::ActorError>> + ::core::marker::Send + 'static {
                self.0.#tell_async(#index, #tuple_pattern, #run)
            }
            #[doc = #async_doc]
            pub fn #async_ident(&self, #parameters) -> impl ::core::future::Future<Output = ::core::result::Result<#result, ::crew::TaskError>> + ::core::marker::Send + 'static {
                self.0.#ask_async(#index, #tuple_pattern, #run)
            }
            #[doc = #try_doc]
            pub fn #try_ident(&self, #parameters) -> ::core::result::Result<::crew::TaskHandle<#result>, ::crew::actor::ActorError> {
                self.0.#try_ask(#index, #tuple_pattern, #run)
            }
        });
        table.push(quote! {
            ::crew::actor::Method {
                name: #name_string,
                argument: ::core::any::type_name::<#tuple_type>,
                result: ::core::any::type_name::<#result>,
                call: ::crew::actor::MethodCall::#variant(|__crew_actor, __crew_input| {
                    let #tuple_pattern: #tuple_type = ::crew::task::codec::decode(__crew_input)
                        .map_err(|__crew_error| ::std::format!("the arguments of method `{}`: {}", #name_string, __crew_error))?;
                    ::crew::task::codec::encode(&__crew_actor.#ident(#(#names),*))
                        .map_err(|__crew_error| ::std::format!("the result of method `{}`: {}", #name_string, __crew_error))
                }),
            }
        });
    }
    let count = table.len();
    let stateless_impl =
        stateless.then(|| quote!(impl ::crew::actor::StatelessActor for #self_type {}));
    let ref_doc = format!(
        "A reference to a [`{type_ident}`] actor: its methods, as calls (made by `#[crew::actor]`)."
    );
    Ok(quote! {
        #block

        #[doc = #ref_doc]
        #[derive(Clone, Debug)]
        #[allow(unreachable_pub)]
        #visibility struct #ref_ident(::crew::actor::ActorRef<#self_type>);

        impl ::core::convert::From<::crew::actor::ActorRef<#self_type>> for #ref_ident {
            fn from(inner: ::crew::actor::ActorRef<#self_type>) -> Self {
                #ref_ident(inner)
            }
        }

        impl ::core::ops::Deref for #ref_ident {
            #deref_target
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl ::crew::__private::serde::Serialize for #ref_ident {
            fn serialize<S: ::crew::__private::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                ::crew::__private::serde::Serialize::serialize(&self.0, serializer)
            }
        }

        impl<'de> ::crew::__private::serde::Deserialize<'de> for #ref_ident {
            fn deserialize<D: ::crew::__private::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                <::crew::actor::ActorRef<#self_type> as ::crew::__private::serde::Deserialize<'de>>::deserialize(deserializer).map(#ref_ident)
            }
        }

        #[allow(unreachable_pub, clippy::unused_unit)]
        impl #ref_ident {
            #(#ref_methods)*
        }

        impl ::crew::actor::Actor for #self_type {
            type Args = #args_type;
            #ref_type
            const NAME: &'static str = #registered_name;

            fn new(args: Self::Args) -> Self {
                #construct
            }

            #on_start
            #on_stop

            fn methods() -> &'static [::crew::actor::Method<Self>] {
                static METHODS: [::crew::actor::Method<#self_type>; #count] = [#(#table),*];
                &METHODS
            }
        }

        #stateless_impl

        ::crew::__private::inventory::submit! {
            ::crew::actor::__private::ActorEntry {
                name: <#self_type as ::crew::actor::Actor>::NAME,
                host: ::crew::actor::host_actor::<#self_type>,
            }
        }
    })
}

/// The methods the generated reference has of its own, through `Deref` to `ActorRef` (and
/// `Clone`): an actor method generating one of these names would hide it silently (a `stop`
/// method: `timer.stop()` would call the method, not stop the actor).
const REFERENCE_METHODS: &[&str] = &[
    "address",
    "ask",
    "ask_async",
    "ask_shared",
    "ask_shared_async",
    "ask_stream",
    "ask_stream_shared",
    "clone",
    "kill",
    "restarts",
    "stop",
    "tell",
    "tell_async",
    "tell_shared",
    "tell_shared_async",
    "try_ask",
    "try_ask_shared",
    "uid",
    "worker_pid",
];

/// Refuses an actor method whose name, or a name generated from it (`tell_x`, `try_x`,
/// `x_async`, `tell_x_async`), is one of the reference's own methods or another method's.
fn check_generated_names(methods: &[ActorMethod]) -> syn::Result<()> {
    let mut taken: std::collections::HashMap<String, &syn::Ident> = Default::default();
    for method in methods {
        let ident = &method.ident;
        let mut names = vec![ident.to_string()];
        if method.stream.is_none() {
            names.extend([
                format!("tell_{ident}"),
                format!("try_{ident}"),
                format!("{ident}_async"),
                format!("tell_{ident}_async"),
            ]);
        }
        for name in names {
            if REFERENCE_METHODS.contains(&name.as_str()) {
                let what = if *ident == name {
                    format!("actor method `{ident}`")
                } else {
                    format!("actor method `{ident}` (whose reference has `{name}`)")
                };
                let own = if name == "clone" {
                    "Clone::clone".to_owned()
                } else {
                    format!("ActorRef::{name}")
                };
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "{what} would hide the reference's own `{own}`: `reference.{name}(..)` \
                         would call your method instead; rename the method (e.g. `{ident}_now`)"
                    ),
                ));
            }
            if let Some(other) = taken.insert(name.clone(), ident) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "actor methods `{other}` and `{ident}` both make a reference method \
                         `{name}` (each method `x` also makes `tell_x`, `try_x`, `x_async` and \
                         `tell_x_async`); rename one of them"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Removes a `#[stream]` attribute from the method; whether it had one.
fn take_stream_attribute(function: &mut ImplItemFn) -> bool {
    let before = function.attrs.len();
    function
        .attrs
        .retain(|attribute| !attribute.path().is_ident("stream"));
    function.attrs.len() != before
}

fn argument_types(function: &ImplItemFn) -> syn::Result<Vec<Type>> {
    function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(pattern) => Some(Ok((*pattern.ty).clone())),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// `T` of `impl Iterator<Item = T>` or `Box<dyn Iterator<Item = T>>`.
fn stream_item(output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    item_of_type(ty)
}

fn item_of_type(ty: &Type) -> Option<Type> {
    match ty {
        Type::ImplTrait(bounds) => item_of_bounds(bounds.bounds.iter()),
        Type::TraitObject(bounds) => item_of_bounds(bounds.bounds.iter()),
        Type::Paren(inner) => item_of_type(&inner.elem),
        Type::Path(path) => {
            let segment = path.path.segments.last()?;
            let syn::PathArguments::AngleBracketed(arguments) = &segment.arguments else {
                return None;
            };
            arguments.args.iter().find_map(|argument| match argument {
                syn::GenericArgument::Type(inner) => item_of_type(inner),
                _ => None,
            })
        }
        _ => None,
    }
}

fn item_of_bounds<'a>(bounds: impl Iterator<Item = &'a syn::TypeParamBound>) -> Option<Type> {
    for bound in bounds {
        let syn::TypeParamBound::Trait(bound) = bound else {
            continue;
        };
        let segment = bound.path.segments.last()?;
        if let syn::PathArguments::AngleBracketed(arguments) = &segment.arguments {
            for argument in &arguments.args {
                if let syn::GenericArgument::AssocType(assoc) = argument {
                    if assoc.ident == "Item" {
                        return Some(assoc.ty.clone());
                    }
                }
            }
        }
    }
    None
}
