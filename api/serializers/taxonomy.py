"""Tags and collections, as lists and as parts of an idea."""

from __future__ import annotations

from rest_framework import serializers

from ideas.models import Collection, Tag


class TagRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["name", "slug"]


class CollectionRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Collection
        fields = ["name", "slug"]


class TagSerializer(serializers.ModelSerializer):
    idea_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["name", "slug", "idea_count"]


class CollectionSerializer(serializers.ModelSerializer):
    idea_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Collection
        fields = ["name", "slug", "description", "idea_count"]
